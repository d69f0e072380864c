package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
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

// checkLogUploadKey applies device auth to a log upload, whose request names only the
// device: the key must be that of the tenant the device last reported under, so a device
// that never reported cannot upload while device auth is on.
func (s *Server) checkLogUploadKey(c echo.Context, sn string) error {
	if s.deviceKeys == nil {
		return nil
	}
	if c.Request().Header.Get(headerDeviceKey) == "" {
		// Refused before the lookup, so keyless requests cost no database query.
		return errorf(http.StatusUnauthorized, "%s: required", headerDeviceKey)
	}
	var d model.Device
	err := s.opt.DB.WithContext(c.Request().Context()).Select("tenant").Take(&d, "sn = ?", sn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errorf(http.StatusUnauthorized, "%s: device %s has not reported yet, so its tenant is unknown", headerDeviceKey, sn)
	}
	if err != nil {
		return dbError("find device tenant", err)
	}
	return s.checkDeviceKey(c, d.Tenant)
}
