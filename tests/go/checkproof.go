// checkproof checks cairn's signed checkpoints and proofs with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, unchanged:
// a second, independent implementation of C2SP signed notes and RFC 9162
// proofs. tests/cli/transparency.rs builds and runs it when Go and
// golang.org/x/mod are installed (.ci/run installs Debian's golang-go and
// golang-golang-x-mod-dev) and says it skipped otherwise.
//
// Usage: checkproof VERIFIER-KEY NOTE-FILE PROOF-FILE
// Exit 0 when note.Open accepts the note and tlog.CheckRecord or
// tlog.CheckTree accepts the proof against it; 1 otherwise.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type proof struct {
	LeafIndex       *int64   `json:"leaf_index"`
	TreeSize        int64    `json:"tree_size"`
	LeafData        string   `json:"leaf_data"`
	InclusionPath   []string `json:"inclusion_path"`
	Root            string   `json:"root"`
	OldSize         *int64   `json:"old_size"`
	NewSize         int64    `json:"new_size"`
	OldRoot         string   `json:"old_root"`
	NewRoot         string   `json:"new_root"`
	ConsistencyPath []string `json:"consistency_path"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "checkproof: "+format+"\n", args...)
	os.Exit(1)
}

func hash(s string) tlog.Hash {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		fail("%q is not a hash", s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		out[i] = hash(s)
	}
	return out
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: checkproof VERIFIER-KEY NOTE-FILE PROOF-FILE")
	}
	v, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("checkpoint: too few lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		fail("checkpoint size %q is not canonical decimal", lines[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != 32 {
		fail("checkpoint root")
	}
	var root tlog.Hash
	copy(root[:], rootBytes)

	data, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("%v", err)
	}
	var p proof
	if err := json.Unmarshal(data, &p); err != nil {
		fail("proof: %v", err)
	}
	switch {
	case p.LeafIndex != nil:
		if p.TreeSize != size || hash(p.Root) != root {
			fail("the proof is not for the checkpoint's tree")
		}
		leaf, err := hex.DecodeString(p.LeafData)
		if err != nil {
			fail("leaf_data: %v", err)
		}
		if err := tlog.CheckRecord(hashes(p.InclusionPath), size, root, *p.LeafIndex, tlog.RecordHash(leaf)); err != nil {
			fail("tlog.CheckRecord: %v", err)
		}
		fmt.Printf("ok: record %d in tree %d\n", *p.LeafIndex, size)
	case p.OldSize != nil:
		if p.NewSize != size || hash(p.NewRoot) != root {
			fail("the proof is not for the checkpoint's tree")
		}
		if err := tlog.CheckTree(hashes(p.ConsistencyPath), size, root, *p.OldSize, hash(p.OldRoot)); err != nil {
			fail("tlog.CheckTree: %v", err)
		}
		fmt.Printf("ok: tree %d is a prefix of tree %d\n", *p.OldSize, size)
	default:
		fail("not a proof")
	}
}
