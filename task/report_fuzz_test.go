package task

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"monitor/model"
)

// FuzzDecodeReport checks the report payload against refDecodeReport and refAppendReport,
// a decoder and an encoder written from the format alone (version byte 1; sn, pos, city,
// id, ndate, ntime, stime, ctime as length-prefixed bytes; unum1, unum2, amount, count,
// line, tenant as numbers below 2^32; the accepted time in microseconds since 1970, zigzag,
// from 1970 to the end of year 9999;
// every length and number a little-endian base-128 varint). Arbitrary bytes never panic
// DecodeReport, which accepts them exactly when the reference does, with the same report
// and rest. A report made of the fuzzed fields encodes to the reference's bytes after any
// prefix, decodes back to itself with nothing left, and two encodings in a row decode in turn.
func FuzzDecodeReport(f *testing.F) {
	good := model.Report{SN: "1C2EB08D", Pos: "12345678", City: "0371", Type: "B503", Unum1: 1, Unum2: 1<<32 - 1,
		NDate: "2021-08-07", NTime: "18:30:30", Amount: 7, Count: 3, Line: 101, STime: "05:01:01",
		CTime: "18:30:20", Tenant: 9, AcceptedAt: time.UnixMicro(1_700_000_000_123_456).UTC()}
	add := func(b []byte, r model.Report) {
		f.Add(b, r.SN, r.Pos, r.City, r.Type, r.NDate, r.NTime, r.STime, r.CTime,
			r.Unum1, r.Unum2, r.Amount, r.Count, r.Line, r.Tenant, r.AcceptedAt.UnixMicro())
	}
	add(AppendReport(nil, &good), good)
	add(nil, model.Report{})
	add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0}, model.Report{SN: "\xff", AcceptedAt: time.UnixMicro(-1)})
	add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x80, 0x00}, model.Report{AcceptedAt: time.UnixMicro(-1 << 63)})
	add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, model.Report{AcceptedAt: time.UnixMicro(1<<63 - 1)})
	add([]byte{1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 9}, good)
	f.Fuzz(func(t *testing.T, b []byte, sn, pos, city, typ, ndate, ntime, stime, ctime string,
		unum1, unum2, amount, count, line, tenant uint32, micros int64) {
		got, rest, err := DecodeReport(b)
		want, wantRest, ok := refDecodeReport(b)
		switch {
		case err != nil && ok:
			t.Fatalf("DecodeReport(%x): %v; the reference reads %+v", b, err, want)
		case err != nil && !errors.Is(err, ErrBadPayload):
			t.Fatalf("DecodeReport(%x): %v, not ErrBadPayload", b, err)
		case err == nil && !ok:
			t.Fatalf("DecodeReport(%x) = %+v; the reference refuses it", b, got)
		case err == nil && (got != want || !bytes.Equal(rest, wantRest)):
			t.Fatalf("DecodeReport(%x) =\n %+v, rest %x\nthe reference reads\n %+v, rest %x", b, got, rest, want, wantRest)
		}

		r := model.Report{SN: sn, Pos: pos, City: city, Type: typ, NDate: ndate, NTime: ntime, STime: stime, CTime: ctime,
			Unum1: unum1, Unum2: unum2, Amount: amount, Count: count, Line: line, Tenant: tenant,
			AcceptedAt: time.UnixMicro(micros).UTC()}
		enc := AppendReport(bytes.Clone(b), &r)
		if !bytes.HasPrefix(enc, b) || !bytes.Equal(enc[len(b):], refAppendReport(nil, &r)) {
			t.Fatalf("AppendReport(%x, %+v) = %x, want the prefix then %x", b, r, enc, refAppendReport(nil, &r))
		}
		enc = enc[len(b):]
		if !acceptedInRange(micros) {
			if _, _, err := DecodeReport(enc); !errors.Is(err, ErrBadPayload) {
				t.Fatalf("accepted time %d µs decoded: %v, want ErrBadPayload", micros, err)
			}
			return
		}
		if back, rest, err := DecodeReport(enc); err != nil || back != r || len(rest) != 0 {
			t.Fatalf("round trip of %+v: %+v, rest %x, %v", r, back, rest, err)
		}

		// A second, different report: the strings and numbers rotated.
		r2 := model.Report{SN: ctime, Pos: sn, City: pos, Type: city, NDate: typ, NTime: ndate, STime: ntime, CTime: stime,
			Unum1: tenant, Unum2: unum1, Amount: unum2, Count: amount, Line: count, Tenant: line,
			AcceptedAt: time.UnixMicro(253402300800*1e6 - 1 - micros).UTC()} // in range as micros is
		two := AppendReport(bytes.Clone(enc), &r2)
		first, rest, err := DecodeReport(two)
		if err != nil || first != r || !bytes.Equal(rest, two[len(enc):]) {
			t.Fatalf("first of two: %+v, rest %x, %v", first, rest, err)
		}
		second, rest, err := DecodeReport(rest)
		if err != nil || second != r2 || len(rest) != 0 {
			t.Fatalf("second of two: %+v, rest %x, %v; want %+v", second, rest, err, r2)
		}
	})
}

// refUvarint reads a little-endian base-128 number of at most 64 bits (at most ten bytes,
// high bit set on every byte but the last); n is 0 when b ends first or the number is
// longer than 64 bits. Longer-than-needed encodings (0x80 0x00 for 0) are read.
func refUvarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		part := uint64(b[i] & 0x7f)
		if i == 9 && b[i] > 1 {
			return 0, 0 // bits above the 64th
		}
		v |= part << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// acceptedInRange reports whether micros is an accepted time the format allows: from
// 1970-01-01 to the end of 9999-12-31 (253402300800 s after 1970).
func acceptedInRange(micros int64) bool { return micros >= 0 && micros <= 253402300800*1e6-1 }

// refDecodeReport is the reference decoder of one payload at the start of b.
func refDecodeReport(b []byte) (r model.Report, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != 1 {
		return r, nil, false
	}
	b = b[1:]
	var strs [8]string
	for i := range strs {
		l, n := refUvarint(b)
		if n == 0 || l > uint64(len(b)-n) {
			return r, nil, false
		}
		strs[i] = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	var nums [6]uint32
	for i := range nums {
		v, n := refUvarint(b)
		if n == 0 || v >= 1<<32 {
			return r, nil, false
		}
		nums[i] = uint32(v)
		b = b[n:]
	}
	z, n := refUvarint(b)
	if n == 0 {
		return r, nil, false
	}
	micros := int64(z >> 1)
	if z&1 != 0 {
		micros = ^micros
	}
	if !acceptedInRange(micros) {
		return r, nil, false
	}
	sec, us := micros/1e6, micros%1e6
	if us < 0 {
		sec, us = sec-1, us+1e6
	}
	r = model.Report{SN: strs[0], Pos: strs[1], City: strs[2], Type: strs[3],
		NDate: strs[4], NTime: strs[5], STime: strs[6], CTime: strs[7],
		Unum1: nums[0], Unum2: nums[1], Amount: nums[2], Count: nums[3], Line: nums[4], Tenant: nums[5],
		AcceptedAt: time.Unix(sec, us*1000).UTC()}
	return r, b[n:], true
}

// refAppendReport is the reference encoder: AppendReport's bytes, written from the format.
func refAppendReport(b []byte, r *model.Report) []byte {
	uv := func(v uint64) {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	b = append(b, 1)
	for _, s := range []string{r.SN, r.Pos, r.City, r.Type, r.NDate, r.NTime, r.STime, r.CTime} {
		uv(uint64(len(s)))
		b = append(b, s...)
	}
	for _, v := range []uint32{r.Unum1, r.Unum2, r.Amount, r.Count, r.Line, r.Tenant} {
		uv(uint64(v))
	}
	us := r.AcceptedAt.Unix()*1e6 + int64(r.AcceptedAt.Nanosecond()/1000)
	uv(uint64(us<<1) ^ uint64(us>>63))
	return b
}
