package model

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParseReport feeds arbitrary bodies to the report decoder and compares its verdict
// with refParseReport, a reference written from the contract alone: ParseReport accepts a
// body exactly when the reference does, and then with the reference's values; a refusal
// is one printable line that names a field the reference also finds at fault; and an
// accepted report survives a JSON round trip.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(fixture))
	f.Add([]byte(`{"sn":"A","ndate":"2024-02-29","ntime":"23:59:59"}`))
	f.Add([]byte(`{"sn":"A","ndate":"2023-02-29","ntime":"24:00:00"}`))
	f.Add([]byte(`{"sn":"A","ndate":"1900-02-29","ntime":"00:00:00"}`))
	f.Add([]byte(`{"sn":"A","ndate":"2000-02-29","ntime":"00:60:00","stime":"00:00:60","ctime":""}`))
	f.Add([]byte(`{"sn":"x","ndate":"2021-08-07","ntime":"18:30:30","unum1":4294967295,"tenant":4294967296}`))
	f.Add([]byte(`{"sn":"x","ndate":"2021-08-07","ntime":"18:30:30","unum1":-0,"unum2":0,"line":01}`))
	f.Add([]byte(`{"sn":"é","city":"\u0000","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"` + strings.Repeat("A", 32) + `","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"` + strings.Repeat("A", 33) + `","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"A","pos":"` + strings.Repeat("p", 32) + `","city":"` + strings.Repeat("c", 16) +
		`","id":"` + strings.Repeat("i", 16) + `","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"A","pos":"` + strings.Repeat("é", 17) + `","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"SN":"A","Sn":"B","ſn":"C","NDATE":"2021-08-07","ntime":"18:30:30","sn":null}`))
	f.Add([]byte(`{"sn":"A","sn":5,"ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"A","city":"\u007f","pos":"\u0085","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"A","x":{"sn":[1,{"a":null}]},"ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"sn":"A"} {"sn":"B"}`))
	f.Add([]byte(`{"sn":"A","count":-1,"amount":1e3,"line":"7","id":{},"city":[]}`))
	f.Add([]byte(` { "sn" : "A" , "ndate":"2021-08-07","ntime":"18:30:30","unum1":0,"line":4294967295 } `))
	f.Add([]byte(`{"sn":"A","ndate":"2021-08-07","ntime":"18:30:30","line":00}`))
	f.Add([]byte(`{"sn":"A","ndate":"2021-08-07","ntime":"18:30:30","line":1.0}`))
	f.Add([]byte(`{"sn":"A","ndate":"2021-08-07","ntime":"18:30:30","line":1E2}`))
	f.Add([]byte(`{"sn":"A\u0041","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`{"sn":"A","sn":"B","ndate":"2021-08-07","ntime":"18:30:30",}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The hand-written decoder of the plain form, where it takes a body, gives what
		// encoding/json gives.
		var fast Report
		if decodeFlat(body, &fast) {
			var std Report
			if err := json.Unmarshal(body, &std); err != nil || fast != std {
				t.Fatalf("decodeFlat(%q) = %+v; encoding/json gives %+v, %v", body, fast, std, err)
			}
		}
		ref := refParseReport(body)
		r, err := ParseReport(body)
		if err != nil {
			msg := err.Error()
			if msg == "" || !utf8.ValidString(msg) || strings.ContainsFunc(msg, refControl) {
				t.Fatalf("error %q is not one printable line", msg)
			}
			if ref.bad == nil {
				t.Fatalf("refused %q: %v; the reference accepts %+v", body, err, ref.r)
			}
			if len(ref.bad) > 0 {
				field, _, _ := strings.Cut(msg, ":")
				if !ref.bad[field] {
					t.Fatalf("refused %q with %q; the reference finds fault with %v", body, msg, ref.bad)
				}
			}
			return
		}
		if ref.bad != nil {
			t.Fatalf("accepted %q as %+v; the reference refuses it (at fault: %v)", body, r, ref.bad)
		}
		if r != ref.r {
			t.Fatalf("decoded %q as\n %+v\nthe reference reads\n %+v", body, r, ref.r)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseReport(again); err != nil || back != r {
			t.Fatalf("JSON round trip of %+v through %s: %+v, %v", r, again, back, err)
		}
	})
}

// refResult is the reference's verdict on a body. bad is nil when the body is a valid
// report (then r holds it), empty when the body is no JSON object at all, and otherwise
// holds every field at fault.
type refResult struct {
	r   Report
	bad map[string]bool
}

// The contract's fields, by kind, with the byte limits of the text fields. Written out
// here rather than taken from the package so that a changed limit shows up as a failure.
var (
	refStringFields = []string{"sn", "pos", "city", "id", "ndate", "ntime", "stime", "ctime"}
	refNumberFields = []string{"unum1", "unum2", "amount", "count", "line", "tenant"}
	refTextMax      = map[string]int{"pos": 32, "city": 16, "id": 16}
	refSN           = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

// refParseReport is the reference decoder. It reads the body with encoding/json's token
// stream (not the struct decoder ParseReport uses) and checks each rule with code of its
// own. Where the contract leaves JSON details open it models Go's encoding/json (v1, the
// default without GOEXPERIMENT=jsonv2), since that is what terminals have been talking to:
//   - a key names a field when it equals the name under Unicode case folding ("SN", "ſn");
//   - of duplicate keys the last one wins, and null leaves the field as it was;
//   - a value of the wrong JSON type is a fault of that field; numbers must be plain
//     non-negative integer literals (no sign, fraction or exponent) below 2^32;
//   - invalid UTF-8 inside strings reads as U+FFFD;
//   - top-level null is an empty object; anything after the object is an error.
//
// "Printable without control characters" is read as Unicode's: valid UTF-8 and no code
// point of category Cc (U+0000-U+001F, U+007F-U+009F).
func refParseReport(body []byte) refResult {
	notObject := refResult{bad: map[string]bool{}}
	if !json.Valid(body) {
		return notObject
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	strs := map[string]string{}
	nums := map[string]uint32{}
	bad := map[string]bool{}
	tok, err := dec.Token()
	if err != nil {
		return notObject
	}
	switch tok {
	case nil: // null: no fields
	case json.Delim('{'):
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return notObject
			}
			name := refFieldName(kt.(string))
			vt, err := dec.Token()
			if err != nil {
				return notObject
			}
			if d, ok := vt.(json.Delim); ok {
				refSkip(dec, d)
				if name != "" {
					bad[name] = true
				}
				continue
			}
			if name == "" || vt == nil {
				continue
			}
			if slices.Contains(refNumberFields, name) {
				n, ok := vt.(json.Number)
				v, fits := refUint32(string(n))
				if !ok || !fits {
					bad[name] = true
					continue
				}
				nums[name] = v
			} else {
				s, ok := vt.(string)
				if !ok {
					bad[name] = true
					continue
				}
				strs[name] = s
			}
		}
	default:
		return notObject
	}

	if !refSN.MatchString(strs["sn"]) {
		bad["sn"] = true
	}
	for field, max := range refTextMax {
		if s := strs[field]; len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, refControl) {
			bad[field] = true
		}
	}
	if !refDate(strs["ndate"]) {
		bad["ndate"] = true
	}
	if !refClock(strs["ntime"]) {
		bad["ntime"] = true
	}
	for _, field := range []string{"stime", "ctime"} {
		if s := strs[field]; s != "" && !refClock(s) {
			bad[field] = true
		}
	}
	if len(bad) > 0 {
		return refResult{bad: bad}
	}
	return refResult{r: Report{
		SN: strs["sn"], Pos: strs["pos"], City: strs["city"], Type: strs["id"],
		NDate: strs["ndate"], NTime: strs["ntime"], STime: strs["stime"], CTime: strs["ctime"],
		Unum1: nums["unum1"], Unum2: nums["unum2"], Amount: nums["amount"], Count: nums["count"],
		Line: nums["line"], Tenant: nums["tenant"],
	}}
}

// refFieldName returns the contract field that key names, or "" for an unknown key.
func refFieldName(key string) string {
	for _, f := range refStringFields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	for _, f := range refNumberFields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

// refSkip reads past the rest of the array or object that d opened.
func refSkip(dec *json.Decoder, d json.Delim) {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// refUint32 reads a plain decimal literal below 2^32.
func refUint32(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + uint64(s[i]-'0')
	}
	return uint32(v), v <= 4294967295
}

// refDate is a date YYYY-MM-DD as the standard library parses one, ten bytes exactly.
// The reference is time.Parse, not digits counted by hand as model's validDate counts
// them, so that the two are independent.
func refDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil && len(s) == len(time.DateOnly)
}

// refClock is a time of day HH:MM:SS as the standard library parses one, eight bytes
// exactly.
func refClock(s string) bool {
	_, err := time.Parse(time.TimeOnly, s)
	return err == nil && len(s) == len(time.TimeOnly)
}

func refControl(r rune) bool { return unicode.Is(unicode.Cc, r) }
