package alert_test

import (
	"fmt"
	"testing"
	"time"

	"monitor/alert"
	"monitor/model"
)

// fleetSim is a fleet of devices that each report every cadence, device i at second i of
// it, swept every sweepEvery on a fake clock.
type fleetSim struct {
	e          *env
	sns        []string
	cadence    time.Duration
	sweepEvery time.Duration
	t          time.Duration // since the start
	// onSweep sees every sweep's result.
	onSweep func(at time.Duration, r alert.Result)
}

// run advances the clock by d in one-second steps; reporting says which devices' reports
// the API accepts (nil: none, intake is down).
func (f *fleetSim) run(t *testing.T, d time.Duration, reporting func(sn string) bool) {
	t.Helper()
	for end := f.t + d; f.t < end; f.t += time.Second {
		f.e.now = f.e.now.Add(time.Second)
		if reporting != nil {
			for i, sn := range f.sns {
				if (f.t+time.Second)%f.cadence == time.Duration(i)*time.Second%f.cadence && reporting(sn) {
					f.e.report(t, sn)
				}
			}
		}
		if (f.t+time.Second)%f.sweepEvery == 0 {
			r := f.e.sweep(t)
			if f.onSweep != nil {
				f.onSweep(f.t+time.Second, r)
			}
		}
	}
}

// The incident of issue 8: offline_after 1m, a sweep every 5 s, 30 devices reporting every
// 30 s, and the API stopped (no report accepted) for a while.
func TestIntakeOutageIsNotSilence(t *testing.T) {
	const offline = time.Minute
	for _, outage := range []time.Duration{offline / 2, offline, 2 * offline} {
		t.Run(fmt.Sprint(outage), func(t *testing.T) {
			e := newEnv(t, alert.Options{OfflineAfter: offline, Notify: true})
			var sns []string
			for i := range 30 {
				sns = append(sns, fmt.Sprintf("D%02d", i))
			}
			// GONE reports like D07 until the outage, and never again.
			sns = append(sns, "GONE")
			e.addDevices(t, e.now, 7, "0371", sns...)
			f := &fleetSim{e: e, sns: sns, cadence: 30 * time.Second, sweepEvery: 5 * time.Second}
			all := func(string) bool { return true }
			e.sweep(t) // seeds
			f.run(t, 3*time.Minute, all)
			if got := alertsOf(t, e.db, model.AlertFiring); len(got) != 0 {
				t.Fatalf("firing before the outage: %v", keys(got))
			}

			var intakeFiredAt, intakeResolvedAt time.Duration
			f.onSweep = func(at time.Duration, r alert.Result) {
				firing := alertsOf(t, e.db, model.AlertFiring)
				_, down := firing[model.AlertIntakeDown+"/"]
				if down && intakeFiredAt == 0 {
					intakeFiredAt = at
				}
				if !down && intakeFiredAt != 0 && intakeResolvedAt == 0 {
					intakeResolvedAt = at
				}
			}
			outageStart := f.t
			f.run(t, outage, nil)
			back := f.t
			// Intake works again; every device but GONE reports on its cadence.
			f.run(t, 10*time.Second, func(sn string) bool { return sn != "GONE" })
			var falseAlarms []string
			for k := range alertsOf(t, e.db, model.AlertFiring) {
				if k != model.AlertOffline+"/GONE" && k != model.AlertIntakeDown+"/" {
					falseAlarms = append(falseAlarms, k)
				}
			}
			if len(falseAlarms) > 0 {
				t.Fatalf("%d of 30 devices reporting on their cadence fired: %v", len(falseAlarms), falseAlarms)
			}
			if _, ok := alertsOf(t, e.db, model.AlertFiring)[model.AlertOffline+"/GONE"]; ok {
				t.Fatal("GONE fired before intake had worked offline_after since it returned")
			}
			f.run(t, 3*time.Minute, func(sn string) bool { return sn != "GONE" })

			var offline []model.Alert
			if err := e.db.Where("kind = ?", model.AlertOffline).Find(&offline).Error; err != nil {
				t.Fatal(err)
			}
			if len(offline) != 1 || offline[0].SN != "GONE" || offline[0].State != model.AlertFiring {
				var got []string
				for _, a := range offline {
					got = append(got, a.SN)
				}
				t.Fatalf("offline alerts %v, want only GONE, firing", got)
			}
			if intakeFiredAt == 0 || intakeFiredAt > back {
				t.Fatalf("intake_down did not fire during the outage (fired at %v, outage %v..%v)", intakeFiredAt, outageStart, back)
			}
			if intakeResolvedAt == 0 || intakeResolvedAt < back {
				t.Fatalf("intake_down resolved at %v, intake back at %v", intakeResolvedAt, back)
			}
			var id []model.Alert
			if err := e.db.Where("kind = ?", model.AlertIntakeDown).Find(&id).Error; err != nil {
				t.Fatal(err)
			}
			if len(id) != 1 || id[0].SN != "" || id[0].Tenant != 0 || id[0].City != "" || id[0].EndsAt == nil {
				t.Fatalf("intake_down alerts %+v", id)
			}
			// Its firing and resolved notices went out.
			seen := map[string]bool{}
			for _, n := range notifications(t, e.rdb.Opt()) {
				for _, a := range n.Alerts {
					if a.Kind == model.AlertIntakeDown {
						seen[a.Status] = true
					}
				}
			}
			if !seen[model.AlertFiring] || !seen[model.AlertResolved] {
				t.Fatalf("intake_down notices: %v", seen)
			}
		})
	}
}

// Intake degraded, not down: 300 devices report every 30 s, then for two minutes only 6
// of them get through (one report per 5 s, 2% of the usual rate). No device that lost
// its reports to that fires; intake_down fires meanwhile and resolves after.
func TestDegradedIntakeIsNotSilence(t *testing.T) {
	const offline = time.Minute
	e := newEnv(t, alert.Options{OfflineAfter: offline, Notify: true})
	var sns []string
	for i := range 300 {
		sns = append(sns, fmt.Sprintf("D%03d", i))
	}
	e.addDevices(t, e.now, 7, "0371", sns...)
	f := &fleetSim{e: e, sns: sns, cadence: 30 * time.Second, sweepEvery: 5 * time.Second}
	all := func(string) bool { return true }
	e.sweep(t) // seeds
	f.run(t, 3*time.Minute, all)
	few := map[string]bool{}
	for i := 0; i < 30; i += 5 {
		few[sns[i]] = true
	}
	intakeDown := false
	f.onSweep = func(time.Duration, alert.Result) {
		if _, ok := alertsOf(t, e.db, model.AlertFiring)[model.AlertIntakeDown+"/"]; ok {
			intakeDown = true
		}
	}
	f.run(t, 2*time.Minute, func(sn string) bool { return few[sn] })
	f.onSweep = nil
	f.run(t, 2*time.Minute, all)
	var fired int64
	if err := e.db.Model(&model.Alert{}).Where("kind = ?", model.AlertOffline).Count(&fired).Error; err != nil || fired != 0 {
		t.Fatalf("%d devices fired over degraded intake (%v)", fired, err)
	}
	if !intakeDown {
		t.Fatal("intake_down did not fire while intake was degraded")
	}
	var resolved int64
	if err := e.db.Model(&model.Alert{}).Where("kind = ? AND state = ?", model.AlertIntakeDown, model.AlertResolved).
		Count(&resolved).Error; err != nil || resolved != 1 {
		t.Fatalf("resolved intake_down alerts: %d %v", resolved, err)
	}
}
