package model

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseReport feeds arbitrary bodies to the report decoder: it never panics, its
// errors are one printable line, and every report it accepts is valid.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(fixture))
	f.Add([]byte(`{"sn":"A","ndate":"2024-02-29","ntime":"23:59:59"}`))
	f.Add([]byte(`{"sn":"A","ndate":"2023-02-29","ntime":"24:00:00"}`))
	f.Add([]byte(`{"sn":"x","ndate":"2021-08-07","ntime":"18:30:30","unum1":4294967295,"tenant":4294967296}`))
	f.Add([]byte(`{"sn":"é","city":"\u0000","ndate":"2021-08-07","ntime":"18:30:30"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"sn":"A"} {"sn":"B"}`))
	f.Add([]byte(`{"sn":"A","count":-1,"amount":1e3,"line":"7"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseReport(body)
		if err != nil {
			msg := err.Error()
			if msg == "" || strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) {
				t.Fatalf("error %q is not one printable line", msg)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted a report that does not validate: %v", err)
		}
	})
}
