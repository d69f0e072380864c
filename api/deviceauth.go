package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"gorm.io/gorm"

	"monitor/model"
)

// headerDeviceKey carries a terminal's tenant key with MONITOR_DEVICE_AUTH=tenant-key.
const headerDeviceKey = "X-Device-Key"

// deviceKeys holds the SHA-256 digest of each tenant's key, so a comparison takes the
// same time whatever the keys' lengths and contents. A nil deviceKeys means device auth
// is off.
type deviceKeys map[uint32][sha256.Size]byte

// newDeviceKeys returns the digests of keys, or nil when keys is nil (device auth off).
func newDeviceKeys(keys model.TenantKeys) deviceKeys {
	if keys == nil {
		return nil
	}
	out := make(deviceKeys, len(keys))
	for t, k := range keys {
		out[t] = sha256.Sum256([]byte(k))
	}
	return out
}

// checkDeviceKey verifies the X-Device-Key of a terminal request against the key of
// tenant: nil when device auth is off or the key matches, else a 401. Neither the
// expected nor the presented key ever appears in the error.
func (s *Server) checkDeviceKey(c echo.Context, tenant uint32) error {
	if s.deviceKeys == nil {
		return nil
	}
	got := c.Request().Header.Get(headerDeviceKey)
	if got == "" {
		return errorf(http.StatusUnauthorized, "%s: required for tenant %d", headerDeviceKey, tenant)
	}
	want, known := s.deviceKeys[tenant]
	sum := sha256.Sum256([]byte(got))
	// Compare even for an unknown tenant so its answer takes as long as a wrong key's.
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !known {
		return errorf(http.StatusUnauthorized, "%s: not the key of tenant %d", headerDeviceKey, tenant)
	}
	return nil
}

var tenantMismatches = promauto.NewCounter(prometheus.CounterOpts{
	Name: "monitor_device_tenant_mismatch_total",
	Help: "Status reports refused (401) because they named another tenant than the one their device belongs to.",
})

// checkDeviceTenant enforces, with device auth on, that a device belongs to the tenant it
// first reported under: it binds r.SN to r.Tenant on Redis when r.SN is new (atomically,
// so of two first reports naming different tenants one wins) and refuses with 401 a
// report naming another tenant than the bound one. It runs before the enqueue, so a
// refused report enqueues nothing, records no last-seen time and is handed no command.
// With device auth off anyone may post as any device and tenant anyway, so nothing is
// checked; Fleet.Accept still binds new devices, so turning auth on needs no migration.
// The returned undo removes a binding this call created; the caller runs it when it
// refuses the report after all, so a refused first report leaves no binding behind.
func (s *Server) checkDeviceTenant(c echo.Context, r *model.Report) (undo func(), err error) {
	undo = func() {}
	if s.deviceKeys == nil {
		return undo, nil
	}
	bound, created, err := s.opt.Fleet.Bind(c.Request().Context(), r.SN, r.Tenant)
	if err != nil {
		return undo, &Error{Status: http.StatusServiceUnavailable, Msg: "queue unavailable, nothing was accepted: retry later", Err: err}
	}
	if created {
		undo = func() {
			// The request may be cancelled already; the binding must go all the same.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 2*time.Second)
			defer cancel()
			if err := s.opt.Fleet.Unbind(ctx, r.SN, r.Tenant); err != nil {
				s.log.ErrorContext(ctx, "a refused first report stays bound to its tenant", "sn", r.SN, "tenant", r.Tenant, "err", err)
			}
		}
	}
	if bound != r.Tenant {
		tenantMismatches.Inc()
		s.log.WarnContext(c.Request().Context(), "report refused: the device belongs to another tenant",
			"sn", r.SN, "tenant", r.Tenant, "bound_tenant", bound, "remote", c.RealIP())
		return undo, errorf(http.StatusUnauthorized, "tenant: device %s does not belong to tenant %d", r.SN, r.Tenant)
	}
	return undo, nil
}

// checkLogUploadKey applies device auth to a log upload, whose request names only the
// device: the key must be that of the tenant the device belongs to, the same binding on
// Redis that status reports are checked against. When Redis holds no binding (a device
// whose first report was never accepted, or a Redis that lost its data and was not
// re-seeded yet) the device's row decides; a device in neither cannot upload.
func (s *Server) checkLogUploadKey(c echo.Context, sn string) error {
	if s.deviceKeys == nil {
		return nil
	}
	if c.Request().Header.Get(headerDeviceKey) == "" {
		// Refused before the lookup, so keyless requests cost no query.
		return errorf(http.StatusUnauthorized, "%s: required", headerDeviceKey)
	}
	ctx := c.Request().Context()
	tenant, ok, err := s.opt.Fleet.Tenant(ctx, sn)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Msg: "redis unavailable: retry later", Err: err}
	}
	if ok {
		return s.checkDeviceKey(c, tenant)
	}
	var d model.Device
	err = s.opt.DB.WithContext(ctx).Select("tenant").Take(&d, "sn = ?", sn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errorf(http.StatusUnauthorized, "%s: device %s has not reported yet, so its tenant is unknown", headerDeviceKey, sn)
	}
	if err != nil {
		return dbError("find device tenant", err)
	}
	return s.checkDeviceKey(c, d.Tenant)
}
