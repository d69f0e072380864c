package simulate

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"time"
)

// writeAckFile writes one line "sn ndate ntime" for every report the server
// acknowledged (200 with code 0), in request order, so a fault-injection run can check
// each acknowledged report in the database independently of the simulator's own count.
func (l *loader) writeAckFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--ack-file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	var line []byte
	for i := range l.accepted {
		if !l.accepted[i].Load() {
			continue
		}
		d, seq := l.fleet.report(i)
		t := reportTime(seq)
		line = l.fleet.sn(line[:0], d)
		line = append(line, ' ')
		line = t.AppendFormat(line, time.DateOnly)
		line = append(line, ' ')
		line = t.AppendFormat(line, time.TimeOnly)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return errors.Join(fmt.Errorf("--ack-file: %w", err), f.Close())
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return fmt.Errorf("--ack-file: %w", err)
	}
	return nil
}
