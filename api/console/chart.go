package console

import (
	"strconv"
	"strings"
	"time"
)

// A holding's usage over time as an SVG chart drawn here: its provision
// log's entries are the steps of three lines, the usage with pending
// commissions (usage_max), the usage accepted (usage_min) and the limit.

// chartPoint is the state of a holding after one entry of its log.
type chartPoint struct {
	At              time.Time
	Min, Max, Limit int64
}

// chart is what the template draws: the paths of the lines in the
// chart's coordinates, and the axes' labels.
type chart struct {
	Width, Height            int
	Left, Right, Top, Bottom int    // the plot's edges
	Used, Pending, Limit     string // SVG path data
	YTicks                   []tick
	XTicks                   []tick
	Title                    string
}

// tick is a label on an axis, at a position along it.
type tick struct {
	Pos   int
	Label string
}

// Size of a chart, in its own units (it scales to the page's width).
const (
	chartWidth, chartHeight = 640, 200
	chartLeft, chartRight   = 80, 630
	chartTop, chartBottom   = 12, 170
)

// usageChart draws points (in time order, at least one) of a resource of
// unit, up to now.
func usageChart(points []chartPoint, unit string, now time.Time) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Right: chartRight, Top: chartTop, Bottom: chartBottom}
	t0, t1 := points[0].At, points[len(points)-1].At
	if now.After(t1) {
		t1 = now
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Minute)
	}
	var top int64 = 1
	for _, p := range points {
		top = max(top, p.Max, p.Limit, p.Min)
	}
	x := func(t time.Time) int {
		return chartLeft + int(float64(chartRight-chartLeft)*float64(t.Sub(t0))/float64(t1.Sub(t0)))
	}
	y := func(v int64) int {
		return chartBottom - int(float64(chartBottom-chartTop)*float64(max(v, 0))/float64(top))
	}
	steps := func(val func(chartPoint) int64) string {
		var b strings.Builder
		for i, p := range points {
			px, py := x(p.At), y(val(p))
			if i == 0 {
				b.WriteString("M" + strconv.Itoa(px) + " " + strconv.Itoa(py))
				continue
			}
			b.WriteString(" H" + strconv.Itoa(px) + " V" + strconv.Itoa(py))
		}
		b.WriteString(" H" + strconv.Itoa(x(t1)))
		return b.String()
	}
	c.Used = steps(func(p chartPoint) int64 { return p.Min })
	c.Pending = steps(func(p chartPoint) int64 { return p.Max })
	c.Limit = steps(func(p chartPoint) int64 { return p.Limit })
	for i, v := range []int64{0, top / 2, top} {
		if i == 0 || v != top/2 || top/2 > 0 {
			c.YTicks = append(c.YTicks, tick{Pos: y(v), Label: amount(unit, v)})
		}
	}
	c.XTicks = []tick{{Pos: chartLeft, Label: when(t0)}, {Pos: chartRight, Label: when(t1)}}
	return c
}
