package worker

import (
	"fmt"
	"os"
	"testing"
	"time"

	"monitor/model"
)

func TestZZReplay(t *testing.T) {
	out := os.Getenv("REPLAY_DIR")
	if out == "" {
		t.Skip()
	}
	prefix := os.Getenv("REPLAY_PREFIX")
	now := time.Now().UTC().Truncate(time.Microsecond)
	day := now.Format("2006-01-02")
	st, _ := os.Create(out + "/status.sql")
	dv, _ := os.Create(out + "/devices.sql")
	csv, _ := os.Create(out + "/status.tsv")
	defer st.Close()
	defer dv.Close()
	defer csv.Close()
	const n, per, tx = 100000, 1000, 4000
	for i := 0; i < n; i += per {
		if i%tx == 0 {
			fmt.Fprintln(st, "BEGIN;")
			fmt.Fprintln(dv, "BEGIN;")
		}
		rs := make([]model.Report, per)
		ds := make([]deviceRow, per)
		for j := range rs {
			k := i + j
			rs[j] = model.Report{SN: fmt.Sprintf("%s%07d", prefix, k), Pos: fmt.Sprintf("P%06d", k), City: "0371", Type: "B503",
				Unum1: uint32(k), Unum2: 7, NDate: day, NTime: fmt.Sprintf("%02d:%02d:%02d", k/3600%24, k/60%60, k%60),
				Amount: 1234, Count: 12, Line: 42, STime: "06:00:00", CTime: "22:00:00", Tenant: 1, AcceptedAt: now}
			ds[j] = deviceRow{Report: rs[j], firstSeen: now, lastSeen: now}
			r := rs[j]
			fmt.Fprintf(csv, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\n", r.SN, r.Pos, r.City, r.Type, r.Unum1, r.Unum2, r.NDate, r.NTime, r.Amount, r.Count, r.Line, r.STime, r.CTime, r.Tenant, now.Format("2006-01-02 15:04:05.000000"))
		}
		fmt.Fprintln(st, mysqlInsertStatus(rs)+";")
		fmt.Fprintln(dv, mysqlUpsertDevices(ds)+";")
		if (i+per)%tx == 0 {
			fmt.Fprintln(st, "COMMIT;")
			fmt.Fprintln(dv, "COMMIT;")
		}
	}
}
