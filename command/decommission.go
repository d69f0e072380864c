package command

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"monitor/model"
)

// ExpireDevice expires the open commands of sn within tx: a decommissioned device will
// never carry them out. Its open command on Redis goes with the device's fleet state
// (fleet.Forget). It returns how many it expired.
func (s *Store) ExpireDevice(ctx context.Context, tx *gorm.DB, sn string) (int64, error) {
	res := tx.WithContext(ctx).Model(&model.Command{}).Where("sn = ? AND open_key IS NOT NULL", sn).
		Updates(map[string]any{"state": model.CommandExpired, "open_key": nil})
	if res.Error != nil {
		return 0, fmt.Errorf("expire commands of %s: %w", sn, res.Error)
	}
	return res.RowsAffected, nil
}
