package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"monitor/model"
)

func TestListAlerts(t *testing.T) {
	h := newHarness(t)
	now := time.Now().UTC()
	key := "device_offline:A"
	for _, a := range []model.Alert{
		{Kind: model.AlertOffline, SN: "A", State: model.AlertFiring, StartsAt: now, FiringKey: &key},
		{Kind: model.AlertOffline, SN: "B", State: model.AlertResolved, StartsAt: now, EndsAt: &now},
		{Kind: model.AlertUnsent, SN: "C", State: model.AlertResolved, StartsAt: now, EndsAt: &now},
	} {
		if err := h.db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	type alertJSON struct {
		SN     string     `json:"sn"`
		State  string     `json:"state"`
		EndsAt *time.Time `json:"endsAt"`
	}
	for q, want := range map[string]string{
		"state=firing":                       "A",
		"state=resolved":                     "C,B",
		"state=resolved&kind=device_offline": "B",
		"":                                   "C,B,A",
		"sn=C":                               "C",
		"state=resolved&kind=unsent_records&sn=C": "C",
	} {
		rec := h.send(http.MethodGet, "/api/v1/alerts?"+q, nil, bearer...)
		var got []string
		for _, a := range decode[pageJSON[alertJSON]](t, rec).Items {
			got = append(got, a.SN)
			if (a.State == "resolved") != (a.EndsAt != nil) {
				t.Errorf("?%s: %s has state %s and endsAt %v", q, a.SN, a.State, a.EndsAt)
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("?%s: %v, want %s", q, got, want)
		}
	}
	for _, q := range []string{"state=open", "kind=x"} {
		if rec := h.send(http.MethodGet, "/api/v1/alerts?"+q, nil, bearer...); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, rec.Code)
		}
	}
}
