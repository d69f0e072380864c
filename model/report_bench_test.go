package model

import (
	"os"
	"testing"
)

// BenchmarkParseReport measures the per-request JSON decoding and validation.
func BenchmarkParseReport(b *testing.B) {
	body, err := os.ReadFile("../fixtures/status.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseReport(body); err != nil {
			b.Fatal(err)
		}
	}
}
