package alert

import (
	"slices"
	"time"

	"monitor/fleet"
)

// Intake health.
//
// The API counts the reports it accepts per fleet.IntakeBucket (5 s) on Redis. From the
// buckets of the last intakeHorizon the sweep decides, for every bucket,
// whether intake worked in it, and calls a device offline only when its silence while
// intake worked (its effective silence) reaches offline_after. A bucket did not work
// when it is:
//
//   - down: inside a run of empty buckets longer than the fleet's usual gap, which is
//     four times the 90th percentile of the gaps between consecutive non-empty buckets,
//     at least 15 s and at most half of offline_after (a fleet reporting in synchronised bursts
//     has long usual gaps; one reporting all the time has short ones);
//   - degraded: inside a complete block (the usual gap wide, aligned) that accepted under
//     a tenth of the usual block: the 90th percentile of the non-empty complete blocks (a
//     high quantile, so that a degradation covering most of the horizon does not become
//     the usual rate; one covering over 90% of it does);
//   - unknown: before the first bucket the hash holds (Redis lost it, the first start,
//     or older than the horizon), or while fewer than two buckets are non-empty.
//
// Intake is down now while the trailing run of empty buckets is longer than the usual
// gap, or the latest complete block is degraded; that is the intake_down alert.

// intakeHorizon is how far back the sweep keeps and looks at buckets: three
// offline_afters, and at least an hour so that the fleet's usual rate outlasts a long
// degradation.
func intakeHorizon(offlineAfter time.Duration) time.Duration {
	return max(3*offlineAfter, time.Hour)
}

// degradedShare: a block that accepted under 1/degradedShare of the usual is degraded.
const degradedShare = 10

// intakeView is when intake worked, per bucket, from first up to now.
type intakeView struct {
	first int64 // bucket number of working[0]
	now   time.Time
	// cum[i] is the working time of buckets first .. first+i-1, the last (current)
	// bucket counting only up to now.
	cum []time.Duration
	// down is whether intake is down or degraded now; since is when that began.
	down  bool
	since time.Time
	known bool // enough activity to judge at all
}

func bucketStart(b int64) time.Time {
	return time.UnixMicro(b * fleet.IntakeBucket.Microseconds()).UTC()
}

func bucketOf(t time.Time) int64 { return t.UnixMicro() / fleet.IntakeBucket.Microseconds() }

// newIntakeView judges the buckets counts (bucket number to reports) from the bucket
// of from up to the bucket of now.
func newIntakeView(counts map[int64]int64, from, now time.Time, offlineAfter time.Duration) *intakeView {
	v := &intakeView{first: bucketOf(from), now: now}
	last := bucketOf(now)
	n := int(last - v.first + 1)
	if n < 1 {
		n = 1
		v.first = last
	}
	c := make([]int64, n)
	var nonEmpty []int
	for i := range c {
		c[i] = counts[v.first+int64(i)]
		if c[i] > 0 {
			nonEmpty = append(nonEmpty, i)
		}
	}
	working := make([]bool, n)
	if len(nonEmpty) >= 2 {
		v.known = true
		gaps := make([]int, 0, len(nonEmpty)-1)
		for j := 1; j < len(nonEmpty); j++ {
			gaps = append(gaps, nonEmpty[j]-nonEmpty[j-1]-1)
		}
		slices.Sort(gaps)
		usual := 4 * gaps[(len(gaps)-1)*9/10]
		usual = max(usual, int(15*time.Second/fleet.IntakeBucket))
		usual = min(usual, max(1, int(offlineAfter/2/fleet.IntakeBucket)))
		// Down: runs of empty buckets longer than usual; before the first non-empty
		// bucket nothing is known.
		for i := nonEmpty[0]; i < n; i++ {
			working[i] = true
		}
		run := 0
		for i := nonEmpty[0]; i <= n; i++ {
			if i < n && c[i] == 0 {
				run++
				continue
			}
			if run > usual {
				for k := i - run; k < i; k++ {
					working[k] = false
				}
			}
			run = 0
		}
		trailing := n - 1 - nonEmpty[len(nonEmpty)-1]
		if trailing > usual {
			v.down = true
		}
		// Degraded: complete blocks, usual wide and aligned, far below the median.
		type block struct {
			start int
			sum   int64
		}
		var blocks []block
		w := int64(usual)
		for b := (v.first + w - 1) / w * w; b+w <= last; b += w {
			start := int(b - v.first)
			if start < nonEmpty[0] {
				continue
			}
			var sum int64
			for k := start; k < start+usual; k++ {
				sum += c[k]
			}
			blocks = append(blocks, block{start, sum})
		}
		var sums []int64
		for _, b := range blocks {
			if b.sum > 0 {
				sums = append(sums, b.sum)
			}
		}
		if len(sums) > 0 {
			slices.Sort(sums)
			usualSum := sums[(len(sums)-1)*9/10]
			for j, b := range blocks {
				if b.sum*degradedShare < usualSum {
					for k := b.start; k < b.start+usual; k++ {
						working[k] = false
					}
					if j == len(blocks)-1 {
						v.down = true // the latest complete block: degraded now
					}
				}
			}
		}
	}
	v.cum = make([]time.Duration, n+1)
	for i := range n {
		d := time.Duration(0)
		if working[i] {
			d = fleet.IntakeBucket
			if i == n-1 {
				d = now.Sub(bucketStart(v.first + int64(i)))
			}
		}
		v.cum[i+1] = v.cum[i] + d
	}
	if v.down {
		i := n - 1
		for i > 0 && working[i] {
			i--
		}
		for i > 0 && !working[i-1] {
			i--
		}
		v.since = bucketStart(v.first + int64(i))
	}
	return v
}

// effective is the time in (at, now] during which intake worked.
func (v *intakeView) effective(at time.Time) time.Duration {
	b := bucketOf(at)
	i := int(b - v.first)
	switch {
	case i < 0:
		return v.cum[len(v.cum)-1]
	case i >= len(v.cum)-1:
		return 0
	}
	// The rest of at's own bucket, then the buckets after it.
	own := v.cum[i+1] - v.cum[i]
	if own > 0 {
		own = max(0, own-at.Sub(bucketStart(b)))
	}
	return own + v.cum[len(v.cum)-1] - v.cum[i+1]
}
