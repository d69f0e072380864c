package api

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"monitor/model"
)

//go:embed web/fleet.html
var fleetPageFS embed.FS

var fleetPageTemplate = template.Must(template.ParseFS(fleetPageFS, "web/fleet.html"))

// maxFleetPageRows bounds the offline devices and alerts the page lists. The headline
// counts are COUNT queries, never the length of a capped list, and the page says when a
// list shows fewer rows than there are.
const maxFleetPageRows = 500

// fleetPageView is what the fleet page shows.
type fleetPageView struct {
	Now                    time.Time
	OfflineAfter           time.Duration
	Total, Online, Offline int64
	Places                 []placeCount
	OfflineDevices         []offlineDevice
	Alerts                 []firingAlert
	Firing                 int64 // every firing alert, however many Alerts lists
}

// placeCount is the number of devices of one tenant and city, online and offline.
type placeCount struct {
	Tenant  uint32
	City    string
	Online  int64
	Total   int64
	Offline int64 `gorm:"-"`
}

// offlineDevice is one offline device as the page lists it.
type offlineDevice struct {
	SN       string
	Tenant   uint32
	City     string
	Type     string
	LastSeen time.Time
	Silent   time.Duration
}

// firingAlert is one firing alert as the page shows it.
type firingAlert struct {
	SN       string
	Kind     string
	Tenant   uint32
	City     string
	StartsAt time.Time
}

// fleetPage serves GET /fleet: a server-rendered overview for operators in a browser,
// behind the same auth as /monitoring (Basic with the token as password works).
func (s *Server) fleetPage(c echo.Context) error {
	ctx := c.Request().Context()
	now := time.Now()
	cutoff := now.UTC().Add(-s.opt.OfflineAfter)
	v := fleetPageView{Now: now.In(s.opt.Location), OfflineAfter: s.opt.OfflineAfter}

	err := s.opt.DB.WithContext(ctx).Model(&model.Device{}).
		Select("tenant, city, SUM(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END) AS online, COUNT(*) AS total", cutoff).
		Group("tenant, city").Order("tenant, city").Scan(&v.Places).Error
	if err != nil {
		return dbError("count devices", err)
	}
	for i := range v.Places {
		p := &v.Places[i]
		p.Offline = p.Total - p.Online
		v.Total += p.Total
		v.Online += p.Online
		v.Offline += p.Offline
	}

	var devs []model.Device
	err = s.opt.DB.WithContext(ctx).Select("sn, tenant, city, tyid, last_seen").
		Where("last_seen < ?", cutoff).Order("last_seen DESC").Limit(maxFleetPageRows).Find(&devs).Error
	if err != nil {
		return dbError("list offline devices", err)
	}
	for _, d := range devs {
		v.OfflineDevices = append(v.OfflineDevices, offlineDevice{
			SN: d.SN, Tenant: d.Tenant, City: d.City, Type: d.TyID,
			LastSeen: d.LastSeen.In(s.opt.Location), Silent: now.Sub(d.LastSeen).Truncate(time.Second),
		})
	}

	if v.Firing, err = s.countFiringAlerts(ctx); err != nil {
		return dbError("count firing alerts", err)
	}
	if v.Alerts, err = s.firingAlerts(ctx); err != nil {
		return dbError("list firing alerts", err)
	}

	var buf bytes.Buffer
	if err := fleetPageTemplate.Execute(&buf, v); err != nil {
		return fmt.Errorf("render fleet page: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// countFiringAlerts counts every firing alert.
func (s *Server) countFiringAlerts(ctx context.Context) (int64, error) {
	var n int64
	if err := s.opt.DB.WithContext(ctx).Model(&model.Alert{}).Where("state = ?", model.AlertFiring).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count alerts: %w", err)
	}
	return n, nil
}

// firingAlerts reads at most maxFleetPageRows firing alerts, newest first.
func (s *Server) firingAlerts(ctx context.Context) ([]firingAlert, error) {
	var rows []model.Alert
	err := s.opt.DB.WithContext(ctx).Where("state = ?", model.AlertFiring).
		Order("starts_at DESC").Limit(maxFleetPageRows).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("query alerts: %w", err)
	}
	out := make([]firingAlert, 0, len(rows))
	for _, a := range rows {
		out = append(out, firingAlert{SN: a.SN, Kind: a.Kind, Tenant: a.Tenant, City: a.City, StartsAt: a.StartsAt.In(s.opt.Location)})
	}
	return out, nil
}
