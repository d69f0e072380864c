package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"monitor/model"
)

// maxNoticesPerSweep bounds the outbox rows one sweep hands on; the rest wait for the next.
const maxNoticesPerSweep = 10000

// recordNotices adds the notices of the alerts a sweep fired and resolved to the outbox,
// in tx: the transaction that stored those changes, so no alert change is stored
// without its notice.
func recordNotices(tx *gorm.DB, fired []model.Alert, resolved []uint64, now time.Time) error {
	notices := make([]model.AlertNotice, 0, len(fired)+len(resolved))
	for _, a := range fired {
		notices = append(notices, model.AlertNotice{AlertID: a.ID, Status: model.AlertFiring, CreatedAt: now})
	}
	for _, id := range resolved {
		notices = append(notices, model.AlertNotice{AlertID: id, Status: model.AlertResolved, CreatedAt: now})
	}
	if len(notices) == 0 {
		return nil
	}
	if err := tx.CreateInBatches(&notices, rowsPerStatement).Error; err != nil {
		return fmt.Errorf("record alert notices: %w", err)
	}
	return nil
}

// outbox reads the notices waiting in the outbox, oldest first, with their alerts as
// each notice shows them: a firing notice of an alert resolved since still says firing.
// ids are the notice rows, for sent.
func (s *Sweeper) outbox(ctx context.Context) (firing, resolved []model.Alert, ids []uint64, err error) {
	var notices []model.AlertNotice
	if err := s.db.WithContext(ctx).Order("id").Limit(maxNoticesPerSweep).Find(&notices).Error; err != nil {
		return nil, nil, nil, fmt.Errorf("read alert notices: %w", err)
	}
	if len(notices) == 0 {
		return nil, nil, nil, nil
	}
	alertIDs := make([]uint64, 0, len(notices))
	for _, n := range notices {
		alertIDs = append(alertIDs, n.AlertID)
	}
	slices.Sort(alertIDs)
	alertIDs = slices.Compact(alertIDs)
	byID := make(map[uint64]model.Alert, len(alertIDs))
	for part := range slices.Chunk(alertIDs, rowsPerStatement) {
		var as []model.Alert
		if err := s.db.WithContext(ctx).Where("id IN ?", part).Find(&as).Error; err != nil {
			return nil, nil, nil, fmt.Errorf("read alerts of notices: %w", err)
		}
		for _, a := range as {
			byID[a.ID] = a
		}
	}
	for _, n := range notices {
		ids = append(ids, n.ID)
		a, ok := byID[n.AlertID]
		if !ok {
			continue // the alert was deleted (retention): nothing to say about it
		}
		a.State = n.Status
		if n.Status == model.AlertFiring {
			a.EndsAt = nil
			firing = append(firing, a)
		} else {
			resolved = append(resolved, a)
		}
	}
	return firing, resolved, ids, nil
}

// sent removes notice rows from the outbox once their notices are pending on Redis or
// enqueued. A failure here only sends those notices again at the next sweep.
func (s *Sweeper) sent(ctx context.Context, ids []uint64) error {
	for part := range slices.Chunk(ids, rowsPerStatement) {
		if err := s.db.WithContext(ctx).Where("id IN ?", part).Delete(&model.AlertNotice{}).Error; err != nil {
			return fmt.Errorf("remove sent alert notices: %w", err)
		}
	}
	return nil
}

// enqueueError is a notice that could not be enqueued although its group, and every
// notice passed in, was recorded as pending on Redis: the outbox may let them go.
type enqueueError struct{ err error }

func (e *enqueueError) Error() string { return fmt.Sprintf("enqueue notification: %v", e.err) }
func (e *enqueueError) Unwrap() error { return e.err }

// pendingSaved reports whether the notify that returned err recorded its alerts as
// pending (or sent) on Redis.
func pendingSaved(err error) bool {
	var e *enqueueError
	return err == nil || errors.As(err, &e)
}
