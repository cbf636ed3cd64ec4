//! [`Timestamp`]: a date, or a local date-time with or without its UTC
//! offset, exactly as the source showed it.
//!
//! Scraped pages show local times without a zone; cairn keeps the local
//! date-time and the offset side by side instead of converting to UTC, so the
//! stored value says what the page said. The canonical text form (used both
//! in hashes and in JSON output) is:
//!
//! | kind | form | example |
//! |---|---|---|
//! | date | `YYYY-MM-DD` | `2012-03-28` |
//! | local date-time, offset unknown | `YYYY-MM-DDTHH:MM:SS[.F]` | `2012-03-28T13:02:00` |
//! | local date-time with offset | the above + `±HH:MM` | `2012-03-28T13:02:00+05:00` |
//!
//! `.F` is present only when the fraction is not zero: 1 to 9 digits, no
//! trailing zeros. UTC is written `+00:00`, never `Z`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::fmt::Write as _;

/// A point or day in time as a source showed it. See the module docs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Timestamp {
    /// A day, no time of day.
    Date(NaiveDate),
    /// A local date-time whose offset the source did not say.
    Local(NaiveDateTime),
    /// A local date-time and its offset from UTC.
    Zoned(NaiveDateTime, FixedOffset),
}

/// Formats an offset as `±HH:MM` (or `±HH:MM:SS` when it has seconds).
pub fn format_offset(offset: FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    if a.is_multiple_of(60) {
        format!("{sign}{:02}:{:02}", a / 3600, (a / 60) % 60)
    } else {
        format!("{sign}{:02}:{:02}:{:02}", a / 3600, (a / 60) % 60, a % 60)
    }
}

/// Parses `+HH:MM`, `-HH:MM`, `+HHMM` or `Z`.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s == "Z" || s == "z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn format_date(d: &NaiveDate) -> String {
    if (0..=9999).contains(&d.year()) {
        let mut s = String::with_capacity(10);
        let _ = write!(s, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
        s
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

fn format_local(dt: &NaiveDateTime) -> String {
    let mut s = format_date(&dt.date());
    let _ = write!(s, "T{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second());
    let nanos = dt.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

/// A canonical form written without allocating: 38 bytes at most (date,
/// time, nine fraction digits, an offset with seconds).
pub struct CanonicalText {
    bytes: [u8; 40],
    len: usize,
}

impl CanonicalText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and `-+:.T` are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn digits(&mut self, v: u32, width: u32) {
        for i in (0..width).rev() {
            self.push(b'0' + (v / 10u32.pow(i) % 10) as u8);
        }
    }

    fn date(&mut self, d: &NaiveDate) {
        self.digits(d.year() as u32, 4);
        self.push(b'-');
        self.digits(d.month(), 2);
        self.push(b'-');
        self.digits(d.day(), 2);
    }

    fn local(&mut self, dt: &NaiveDateTime) {
        self.date(&dt.date());
        self.push(b'T');
        self.digits(dt.hour(), 2);
        self.push(b':');
        self.digits(dt.minute(), 2);
        self.push(b':');
        self.digits(dt.second(), 2);
        let mut nanos = dt.nanosecond() % 1_000_000_000;
        if nanos != 0 {
            let mut width = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                width -= 1;
            }
            self.push(b'.');
            self.digits(nanos, width);
        }
    }

    fn offset(&mut self, offset: &FixedOffset) {
        let secs = offset.local_minus_utc();
        self.push(if secs < 0 { b'-' } else { b'+' });
        let a = secs.unsigned_abs();
        self.digits(a / 3600, 2);
        self.push(b':');
        self.digits((a / 60) % 60, 2);
        if !a.is_multiple_of(60) {
            self.push(b':');
            self.digits(a % 60, 2);
        }
    }
}

impl Timestamp {
    /// [`Timestamp::canonical`] without allocating, for years 0 to 9999
    /// (`None` for others, which [`Timestamp::canonical`] writes as chrono
    /// does). Ids hash this text for every timestamp of every event.
    pub fn canonical_text(&self) -> Option<CanonicalText> {
        let date = match self {
            Timestamp::Date(d) => *d,
            Timestamp::Local(dt) | Timestamp::Zoned(dt, _) => dt.date(),
        };
        if !(0..=9999).contains(&date.year()) {
            return None;
        }
        let mut t = CanonicalText { bytes: [0; 40], len: 0 };
        match self {
            Timestamp::Date(d) => t.date(d),
            Timestamp::Local(dt) => t.local(dt),
            Timestamp::Zoned(dt, off) => {
                t.local(dt);
                t.offset(off);
            }
        }
        Some(t)
    }

    /// Seconds since the Unix epoch and nanoseconds: the offset applied when
    /// known, a local time taken as UTC, a date at midnight. For ordering and
    /// comparing instants; ids hash [`Timestamp::canonical`].
    pub fn instant(&self) -> (i64, u32) {
        match self {
            Timestamp::Date(d) => (d.and_hms_opt(0, 0, 0).map_or(0, |dt| dt.and_utc().timestamp()), 0),
            Timestamp::Local(dt) => (dt.and_utc().timestamp(), dt.and_utc().timestamp_subsec_nanos()),
            Timestamp::Zoned(dt, off) => (
                dt.and_utc().timestamp() - i64::from(off.local_minus_utc()),
                dt.and_utc().timestamp_subsec_nanos(),
            ),
        }
    }

    /// The canonical text form (module docs). This is what ids hash.
    pub fn canonical(&self) -> String {
        if let Some(t) = self.canonical_text() {
            return t.as_str().to_string();
        }
        match self {
            Timestamp::Date(d) => format_date(d),
            Timestamp::Local(dt) => format_local(dt),
            Timestamp::Zoned(dt, off) => format!("{}{}", format_local(dt), format_offset(*off)),
        }
    }

    /// The UTC instant of a Unix time in seconds (used for recorded_at).
    pub fn from_unix(secs: i64) -> Option<Timestamp> {
        let dt = DateTime::from_timestamp(secs, 0)?;
        Some(Timestamp::Zoned(dt.naive_utc(), FixedOffset::east_opt(0)?))
    }

    /// The current wall-clock time in UTC, to whole seconds.
    pub fn now_utc() -> Timestamp {
        let now = chrono::Utc::now().timestamp();
        Timestamp::from_unix(now).unwrap_or(Timestamp::Date(NaiveDate::MIN))
    }

    /// Parses the canonical form strictly (what storage and hashes use).
    pub fn parse_canonical(s: &str) -> Option<Timestamp> {
        let t = Timestamp::parse_lenient(s, None)?;
        (t.canonical() == s).then_some(t)
    }

    /// Parses what JSON Lines inputs may carry: RFC 3339 (`Z` or an offset),
    /// a date-time without offset (`T` or a space between, seconds and
    /// fraction optional) or a date. A date-time without offset gets
    /// `default_offset` when one is given, else stays [`Timestamp::Local`].
    /// A leap second (`23:59:60`) reads as the second before it: inputs
    /// are read with [`Timestamp::parse_input`], which refuses it.
    pub fn parse_lenient(s: &str, default_offset: Option<FixedOffset>) -> Option<Timestamp> {
        let s = s.trim();
        if s.len() == 10 {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Timestamp::Date);
        }
        if s.len() < 16 || !s.is_ascii() {
            return None;
        }
        let (date_part, rest) = s.split_at(10);
        let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()?;
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        // Split the time from an offset: the offset starts at Z, + or - .
        let off_at = rest.find(['Z', 'z', '+', '-']);
        let (time_part, off_part) = match off_at {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let time = NaiveTime::parse_from_str(time_part, "%H:%M:%S%.f")
            .or_else(|_| NaiveTime::parse_from_str(time_part, "%H:%M"))
            .ok()?;
        let dt = NaiveDateTime::new(date, time);
        match off_part {
            Some(o) => Some(Timestamp::Zoned(dt, parse_offset(o)?)),
            None => Some(match default_offset {
                Some(off) => Timestamp::Zoned(dt, off),
                None => Timestamp::Local(dt),
            }),
        }
    }

    /// [`Timestamp::parse_lenient`] for a time an input shows (a comment's,
    /// a fetch time): a leap second is refused
    /// ([`Timestamp::names_leap_second`]), since the canonical text has no
    /// place for it and read as `23:59:59` it would be another second than
    /// the source showed (two comments a second apart, one id).
    ///
    /// A fraction of a second past nine digits (nanoseconds) is refused
    /// too, unless the digits past the ninth are zeros
    /// ([`Timestamp::cuts_fraction`]): cut, it would be another instant
    /// than the source showed.
    pub fn parse_input(s: &str, default_offset: Option<FixedOffset>) -> Option<Timestamp> {
        if Timestamp::cuts_fraction(s) {
            return None;
        }
        Timestamp::parse_lenient(s, default_offset).filter(|t| !t.is_leap_second())
    }

    /// Whether `s` shows a fraction of a second with a digit other than 0
    /// past the ninth, which nanoseconds cannot keep.
    pub fn cuts_fraction(s: &str) -> bool {
        let s = s.trim();
        let Some(time) = s.get(11..) else { return false };
        let Some(dot) = time.find('.') else { return false };
        let digits = time[dot + 1..].bytes().take_while(u8::is_ascii_digit);
        digits.skip(9).any(|d| d != b'0')
    }

    /// Whether `s` is a date-time [`Timestamp::parse_input`] refuses only
    /// because it is a leap second: for a message that says so.
    pub fn names_leap_second(s: &str) -> bool {
        Timestamp::parse_lenient(s, None).is_some_and(|t| t.is_leap_second())
    }

    /// Why [`Timestamp::parse_input`] refuses `s`, given as `what`
    /// (`posted_at`, `--fetched-at`): a leap second, or a fraction finer
    /// than nanoseconds, is named as one, anything else is `otherwise`
    /// (what was expected).
    pub fn input_refusal(what: &str, s: &str, otherwise: &str) -> String {
        if Timestamp::names_leap_second(s) {
            format!("{what} {s:?} is a leap second, which cairn cannot keep as shown")
        } else if Timestamp::cuts_fraction(s) && Timestamp::parse_lenient(s, None).is_some() {
            format!(
                "{what} {s:?} has a fraction of a second finer than nanoseconds, which cairn cannot keep as shown"
            )
        } else {
            format!("{what} {s:?} {otherwise}")
        }
    }

    fn is_leap_second(&self) -> bool {
        match self {
            Timestamp::Date(_) => false,
            Timestamp::Local(dt) | Timestamp::Zoned(dt, _) => dt.time().nanosecond() >= 1_000_000_000,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The compact storage form: kind (0 date, 1 local, 2 zoned), days since
/// the common era, seconds of the day, nanoseconds, offset seconds. Used
/// for binary formats (the storage envelope); human-readable formats (JSON)
/// get the canonical text.
type Packed = (u8, i32, u32, u32, i32);

impl Timestamp {
    fn pack(&self) -> Packed {
        let local = |dt: &NaiveDateTime| {
            (dt.date().num_days_from_ce(), dt.time().num_seconds_from_midnight(), dt.time().nanosecond())
        };
        match self {
            Timestamp::Date(d) => (0, d.num_days_from_ce(), 0, 0, 0),
            Timestamp::Local(dt) => {
                let (d, s, n) = local(dt);
                (1, d, s, n, 0)
            }
            Timestamp::Zoned(dt, off) => {
                let (d, s, n) = local(dt);
                (2, d, s, n, off.local_minus_utc())
            }
        }
    }

    fn unpack((kind, days, secs, nanos, offset): Packed) -> Option<Timestamp> {
        let date = NaiveDate::from_num_days_from_ce_opt(days)?;
        let time = || NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos);
        match kind {
            0 if secs == 0 && nanos == 0 && offset == 0 => Some(Timestamp::Date(date)),
            1 if offset == 0 => Some(Timestamp::Local(NaiveDateTime::new(date, time()?))),
            2 => Some(Timestamp::Zoned(NaiveDateTime::new(date, time()?), FixedOffset::east_opt(offset)?)),
            _ => None,
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.canonical())
        } else {
            self.pack().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse_canonical(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("not a canonical timestamp: {s:?}")))
        } else {
            let packed = Packed::deserialize(d)?;
            Timestamp::unpack(packed)
                .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {packed:?}")))
        }
    }
}

/// The packed form, as [`Serialize`] writes it in bincode, read without
/// serde (log segments are decoded this way: [`crate::store::envelope`]).
impl<C> bincode::Decode<C> for Timestamp {
    fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        let packed: Packed = bincode::Decode::decode(d)?;
        Timestamp::unpack(packed)
            .ok_or_else(|| bincode::error::DecodeError::OtherString(format!("not a timestamp: {packed:?}")))
    }
}
bincode::impl_borrow_decode!(Timestamp);

/// The packed form, as [`Serialize`] writes it in bincode, written without
/// serde.
impl bincode::Encode for Timestamp {
    fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
        bincode::Encode::encode(&self.pack(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The canonical form through chrono's formatting (what
    /// [`Timestamp::canonical_text`] must equal).
    fn formatted(t: &Timestamp) -> String {
        match t {
            Timestamp::Date(d) => format_date(d),
            Timestamp::Local(dt) => format_local(dt),
            Timestamp::Zoned(dt, off) => format!("{}{}", format_local(dt), format_offset(*off)),
        }
    }

    proptest! {
        #[test]
        fn canonical_text_is_what_chrono_formats(
            days in -40_000i32..3_700_000,
            secs in 0u32..86_400,
            nanos in prop_oneof![Just(0u32), 0u32..2_000_000_000, (0u32..1000).prop_map(|n| n * 1_000_000)],
            offset in prop_oneof![Just(None), (-86_399i32..86_400).prop_map(Some), (-23i32..24).prop_map(|h| Some(h * 3600 + 1800))],
            kind in 0u8..3,
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
            let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, if secs % 60 == 59 { nanos } else { nanos % 1_000_000_000 }).unwrap();
            let dt = NaiveDateTime::new(date, time);
            let t = match (kind, offset) {
                (0, _) => Timestamp::Date(date),
                (1, _) | (_, None) => Timestamp::Local(dt),
                (_, Some(o)) => Timestamp::Zoned(dt, FixedOffset::east_opt(o).unwrap()),
            };
            prop_assert_eq!(t.canonical(), formatted(&t));
            if let Some(text) = t.canonical_text() {
                prop_assert_eq!(text.as_str(), formatted(&t));
            } else {
                prop_assert!(!(0..=9999).contains(&date.year()));
            }
        }
    }

    #[test]
    fn canonical_forms() {
        let t = Timestamp::parse_lenient("2012-03-28 13:02", FixedOffset::east_opt(5 * 3600)).unwrap();
        assert_eq!(t.canonical(), "2012-03-28T13:02:00+05:00");
        let t = Timestamp::parse_lenient("2012-03-28T13:02:00Z", None).unwrap();
        assert_eq!(t.canonical(), "2012-03-28T13:02:00+00:00");
        let t = Timestamp::parse_lenient("2012-03-28T13:02:00.250-03:30", None).unwrap();
        assert_eq!(t.canonical(), "2012-03-28T13:02:00.25-03:30");
        let t = Timestamp::parse_lenient("2012-03-28T13:02:07", None).unwrap();
        assert_eq!(t.canonical(), "2012-03-28T13:02:07");
        let t = Timestamp::parse_lenient("2012-03-28", None).unwrap();
        assert_eq!(t.canonical(), "2012-03-28");
    }

    /// A leap second is refused, never read as the second before it (which
    /// gave a comment at :59 and one at :60 one id); only it is named so.
    #[test]
    fn a_leap_second_is_refused_and_named() {
        for s in ["2012-06-30T23:59:60Z", "2012-06-30T23:59:60.5+00:00", "2012-06-30 23:59:60"] {
            assert_eq!(Timestamp::parse_input(s, None), None, "{s}");
            assert!(Timestamp::names_leap_second(s), "{s}");
            // Queries (`--at`, `--until`) still read it, as the second before.
            assert!(Timestamp::parse_lenient(s, None).is_some(), "{s}");
        }
        for s in ["2012-06-30T23:59:59Z", "2012-06-30", "2012-06-30T23:59:61Z", "nonsense"] {
            assert!(!Timestamp::names_leap_second(s), "{s}");
        }
        assert!(Timestamp::parse_input("2012-06-30T23:59:59Z", None).is_some());
    }

    /// A fraction finer than nanoseconds is refused, never cut (which gave
    /// two times that differ past the ninth digit one id), unless what
    /// is past the ninth digit is zeros; queries still read it.
    #[test]
    fn a_fraction_finer_than_nanoseconds_is_refused() {
        for s in [
            "2012-06-30T12:00:00.1234567891Z",
            "2012-06-30 12:00:00.0000000001",
            "2012-06-30T12:00:00.12345678901+05:00",
        ] {
            assert_eq!(Timestamp::parse_input(s, None), None, "{s}");
            assert!(Timestamp::cuts_fraction(s), "{s}");
            assert!(
                Timestamp::input_refusal("posted_at", s, "is no time").contains("finer than nanoseconds"),
                "{s}"
            );
            assert!(Timestamp::parse_lenient(s, None).is_some(), "{s}");
        }
        for (s, canonical) in [
            ("2012-06-30T12:00:00.123456789Z", "2012-06-30T12:00:00.123456789+00:00"),
            ("2012-06-30T12:00:00.1234567890000Z", "2012-06-30T12:00:00.123456789+00:00"),
            ("2012-06-30T12:00:00.5-03:00", "2012-06-30T12:00:00.5-03:00"),
        ] {
            assert!(!Timestamp::cuts_fraction(s), "{s}");
            assert_eq!(Timestamp::parse_input(s, None).unwrap().canonical(), canonical, "{s}");
        }
        assert!(
            Timestamp::input_refusal("posted_at", "soon.1234567891", "is no time").ends_with("is no time")
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2012-13-01",
            "2012-03-28T25:00",
            "2012-03-28T13:02+5",
            "2012-0  • Mar 28, 2012 - 1:08PM",
        ] {
            assert!(Timestamp::parse_lenient(s, None).is_none(), "{s}");
        }
        assert!(Timestamp::parse_canonical("2012-03-28T13:02Z").is_none());
    }

    #[test]
    fn packs_and_unpacks() {
        for s in
            ["2012-03-28", "2012-03-28T13:02:00", "1999-12-31T23:59:59.5+05:45", "2012-03-28T13:02:00-03:30"]
        {
            let t = Timestamp::parse_canonical(s).unwrap();
            assert_eq!(Timestamp::unpack(t.pack()), Some(t));
        }
        assert_eq!(Timestamp::unpack((0, 1, 5, 0, 0)), None);
        assert_eq!(Timestamp::unpack((9, 1, 0, 0, 0)), None);
        assert_eq!(Timestamp::unpack((2, 1, 0, 0, 999_999)), None);
    }

    #[test]
    fn far_years_still_format() {
        let d = NaiveDate::from_ymd_opt(12345, 1, 2).unwrap();
        assert_eq!(Timestamp::Date(d).canonical(), d.format("%Y-%m-%d").to_string());
        assert_eq!(Timestamp::Date(NaiveDate::from_ymd_opt(7, 3, 4).unwrap()).canonical(), "0007-03-04");
    }

    #[test]
    fn round_trips_canonical() {
        for s in ["2012-03-28", "2012-03-28T13:02:00", "1999-12-31T23:59:59.5+05:45"] {
            assert_eq!(Timestamp::parse_canonical(s).unwrap().canonical(), s);
        }
        assert_eq!(Timestamp::from_unix(0).unwrap().canonical(), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_offset(FixedOffset::west_opt(3600 + 1800).unwrap()), "-01:30");
    }
}
