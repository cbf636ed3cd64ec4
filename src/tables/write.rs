//! The table writers: CSV (RFC 4180: a header row, fields quoted when they
//! hold a comma, a quote or a line break), JSON Lines (one object per row,
//! readable by DuckDB's `read_json` from a file or a pipe) and Parquet
//! (arrow-rs: real column types, zstd, row groups of at most
//! [`ROW_GROUP`] rows, so memory stays flat however large the table).

use super::{Column, ColumnType, Value};
use crate::error::{Error, Result};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::io::Write;
use std::sync::Arc;

/// Rows per Parquet row group (and per batch handed to the writer).
pub const ROW_GROUP: usize = 8192;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Where rows go.
pub trait RowSink {
    /// Takes one row (one value per column, in order).
    fn row(&mut self, row: Vec<Value>) -> Result<()>;
    /// Writes what is buffered and the format's trailer.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A writer of `format` for `columns` into `out`.
pub fn writer<'a>(
    format: Format,
    columns: &'static [Column],
    out: &'a mut dyn Write,
) -> Result<Box<dyn RowSink + 'a>> {
    Ok(match format {
        Format::Csv => {
            let header: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
            write_csv_record(out, header.iter().map(String::as_str))?;
            Box::new(Csv { out })
        }
        Format::Jsonl => Box::new(Jsonl { columns, out }),
        Format::Parquet => Box::new(Parquet::new(columns, out)?),
    })
}

fn out_err(e: std::io::Error) -> Error {
    crate::cli::stdout_error(e)
}

/// A UTC instant as RFC 3339 (`2017-05-12T05:31:00Z`, with the fraction
/// when there is one).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) if nanos == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        None => String::new(),
    }
}

struct Csv<'a> {
    out: &'a mut dyn Write,
}

fn write_csv_record<'s>(out: &mut dyn Write, fields: impl Iterator<Item = &'s str>) -> Result<()> {
    let mut line = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(out_err)
}

impl RowSink for Csv<'_> {
    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        let fields: Vec<String> = row
            .into_iter()
            .map(|v| match v {
                Value::Null => String::new(),
                Value::Text(s) => s,
                Value::Int(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Time(s, n) => rfc3339(s, n),
                // A JSON array: article keys may hold spaces and commas.
                Value::TextList(l) => serde_json::to_string(&l).unwrap_or_default(),
            })
            .collect();
        write_csv_record(self.out, fields.iter().map(String::as_str))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(out_err)
    }
}

struct Jsonl<'a> {
    columns: &'static [Column],
    out: &'a mut dyn Write,
}

impl RowSink for Jsonl<'_> {
    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        let mut object = serde_json::Map::with_capacity(row.len());
        for (c, v) in self.columns.iter().zip(row) {
            let v = match v {
                Value::Null => serde_json::Value::Null,
                Value::Text(s) => s.into(),
                Value::Int(n) => n.into(),
                Value::Bool(b) => b.into(),
                Value::Time(s, n) => rfc3339(s, n).into(),
                Value::TextList(l) => l.into(),
            };
            object.insert(c.name.to_string(), v);
        }
        let mut line =
            serde_json::to_vec(&object).map_err(|e| Error::Internal(format!("a row as JSON: {e}")))?;
        line.push(b'\n');
        self.out.write_all(&line).map_err(out_err)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(out_err)
    }
}

/// The builders of one batch, one per column.
enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    TextList(ListBuilder<StringBuilder>),
}

impl Builder {
    fn new(ty: ColumnType) -> Builder {
        match ty {
            ColumnType::Text => Builder::Text(StringBuilder::new()),
            ColumnType::Int => Builder::Int(Int64Builder::new()),
            ColumnType::Bool => Builder::Bool(BooleanBuilder::new()),
            ColumnType::Time => Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ColumnType::TextList => Builder::TextList(ListBuilder::new(StringBuilder::new())),
        }
    }

    fn push(&mut self, v: Value) -> Result<()> {
        match (self, v) {
            (Builder::Text(b), Value::Text(s)) => b.append_value(s),
            (Builder::Text(b), Value::Null) => b.append_null(),
            (Builder::Int(b), Value::Int(n)) => b.append_value(n),
            (Builder::Int(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Time(b), Value::Time(s, n)) => {
                b.append_value(s.saturating_mul(1_000_000).saturating_add(i64::from(n / 1000)))
            }
            (Builder::Time(b), Value::Null) => b.append_null(),
            (Builder::TextList(b), Value::TextList(l)) => {
                for s in l {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            (Builder::TextList(b), Value::Null) => b.append(false),
            (_, v) => return Err(Error::Internal(format!("table value {v:?} does not fit its column"))),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::TextList(b) => Arc::new(b.finish()),
        }
    }
}

fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

/// What the Parquet writer has written and `out` has not yet taken (the
/// writer needs a `Send` sink; it is drained after every batch, so it
/// holds at most about one row group).
#[derive(Clone, Default)]
struct Pending(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pending {
    fn drain_into(&self, out: &mut dyn Write) -> Result<()> {
        let mut buf = self.0.lock().map_err(|_| Error::Internal("Parquet buffer poisoned".into()))?;
        out.write_all(&buf).map_err(out_err)?;
        buf.clear();
        Ok(())
    }
}

struct Parquet<'a> {
    columns: &'static [Column],
    schema: Arc<Schema>,
    builders: Vec<Builder>,
    rows: usize,
    pending: Pending,
    writer: parquet::arrow::ArrowWriter<Pending>,
    out: &'a mut dyn Write,
}

fn parquet_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("writing Parquet: {e}"))
}

impl<'a> Parquet<'a> {
    fn new(columns: &'static [Column], out: &'a mut dyn Write) -> Result<Parquet<'a>> {
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| Field::new(c.name, data_type(c.ty), c.nullable)).collect::<Vec<_>>(),
        ));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
            .build();
        let pending = Pending::default();
        let writer = parquet::arrow::ArrowWriter::try_new(pending.clone(), schema.clone(), Some(props))
            .map_err(parquet_err)?;
        let builders = columns.iter().map(|c| Builder::new(c.ty)).collect();
        Ok(Parquet { columns, schema, builders, rows: 0, pending, writer, out })
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(parquet_err)?;
        self.writer.write(&batch).map_err(parquet_err)?;
        self.rows = 0;
        self.pending.drain_into(self.out)
    }
}

impl RowSink for Parquet<'_> {
    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        if row.len() != self.columns.len() {
            return Err(Error::Internal(format!(
                "a row of {} values for {} columns",
                row.len(),
                self.columns.len()
            )));
        }
        for (b, v) in self.builders.iter_mut().zip(row) {
            b.push(v)?;
        }
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush_batch()?;
        self.writer.finish().map_err(parquet_err)?;
        self.pending.drain_into(self.out)?;
        self.out.flush().map_err(out_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut out = Vec::new();
        write_csv_record(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines", ""].into_iter()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn instants_are_written_in_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_494_567_060, 500_000_000), "2017-05-12T05:31:00.500Z");
    }
}
