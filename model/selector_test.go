package model

import "testing"

func TestParseSelector(t *testing.T) {
	sel, err := ParseSelector("city=0371, type=B503,tenant=7,line=12")
	if err != nil || sel.City != "0371" || sel.Type != "B503" || *sel.Tenant != 7 || *sel.Line != 12 || sel.All() {
		t.Fatalf("selector %+v, %v", sel, err)
	}
	if sel, err := ParseSelector("all"); err != nil || !sel.All() {
		t.Fatalf("all: %+v %v", sel, err)
	}
	for _, bad := range []string{"city", "city=", "depot=1", "tenant=x", "line=-1", "city=1,city=2", "all,city=1"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}
