package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
)

// QuotaCmd sets, shows and deletes holdings (admin).
type QuotaCmd struct {
	ClientFlags `embed:""`
	Set         QuotaSetCmd    `cmd:"" help:"Set a holding's limit, or many from a CSV file (--file)."`
	Get         QuotaGetCmd    `cmd:"" help:"Show holdings with a usage bar each."`
	Delete      QuotaDeleteCmd `cmd:"" help:"Delete a holding."`
}

// QuotaSetCmd sets one holding's limit, or a CSV file of them.
type QuotaSetCmd struct {
	Holder   string `arg:"" optional:"" help:"The holder."`
	Source   string `arg:"" optional:"" help:"The source (- for the null source)."`
	Resource string `arg:"" optional:"" help:"The resource."`
	Limit    string `arg:"" optional:"" help:"The limit."`
	File     string `name:"file" type:"path" help:"A CSV file of holder,source,resource,limit lines (a header line is skipped; source - is null)."`
	Chunk    int    `name:"chunk" default:"500" help:"Holdings per call with --file."`
}

// QuotaGetCmd shows holdings.
type QuotaGetCmd struct {
	Holder   []string `name:"holder" help:"Only these holders (comma-separated or repeated)."`
	Source   []string `name:"source" help:"Only these sources (- for the null source)."`
	Resource []string `name:"resource" help:"Only these resources."`
	Mine     bool     `name:"mine" help:"Your own quotas by project (GET /quotas; any user's token) instead of holdings."`
}

// QuotaDeleteCmd deletes a holding.
type QuotaDeleteCmd struct {
	Holder   string `arg:"" help:"The holder."`
	Source   string `arg:"" help:"The source (- for the null source)."`
	Resource string `arg:"" help:"The resource."`
}

func parseLimit(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit %q: want a non-negative integer", s)
	}
	return n, nil
}

// Run sets one holding's limit, or those of --file.
func (cmd *QuotaSetCmd) Run(e *cliEnv) error {
	if cmd.File != "" {
		if cmd.Holder != "" {
			return usageError("quota set: give either --file or HOLDER SOURCE RESOURCE LIMIT, not both")
		}
		return cmd.runFile(e)
	}
	if cmd.Limit == "" {
		return usageError("quota set: want HOLDER SOURCE RESOURCE LIMIT, or --file FILE")
	}
	limit, err := parseLimit(cmd.Limit)
	if err != nil {
		return usageError("quota set: %v", err)
	}
	hs, err := e.c.SetHoldings(e.ctx, []client.HoldingLimit{{Holder: cmd.Holder, Source: parseSource(cmd.Source),
		Resource: cmd.Resource, Limit: limit}})
	if err != nil {
		return err
	}
	return e.show(map[string]any{"holdings": hs}, func() error { return holdingsTable(e, hs) })
}

// readLimits reads a CSV of holder,source,resource,limit.
func readLimits(r io.Reader) ([]client.HoldingLimit, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out []client.HoldingLimit
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		limit, err := parseLimit(rec[3])
		if err != nil {
			if line == 1 && strings.EqualFold(strings.TrimSpace(rec[3]), "limit") {
				continue // the header
			}
			pl, _ := cr.FieldPos(3)
			return nil, fmt.Errorf("line %d: %v", pl, err)
		}
		out = append(out, client.HoldingLimit{Holder: rec[0], Source: parseSource(rec[1]), Resource: rec[2], Limit: limit})
	}
}

// cliIsTerminal says whether w is a terminal (a character device).
func cliIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress is a single updating line on a terminal.
type progress struct {
	w     io.Writer
	on    bool
	total int
}

func (p *progress) update(done int) {
	if !p.on {
		return
	}
	const width = 30
	n := width
	if p.total > 0 {
		n = done * width / p.total
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d holdings", strings.Repeat("#", n), strings.Repeat(".", width-n), done, p.total)
}

func (p *progress) end() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}

func (cmd *QuotaSetCmd) runFile(e *cliEnv) error {
	if cmd.Chunk <= 0 {
		return usageError("--chunk must be positive")
	}
	f, err := os.Open(cmd.File)
	if err != nil {
		return usageError("quota set: %v", err)
	}
	defer f.Close()
	limits, err := readLimits(f)
	if err != nil {
		return usageError("quota set: %s: %v", cmd.File, err)
	}
	p := &progress{w: e.stderr, on: cliIsTerminal(e.stderr), total: len(limits)}
	p.update(0)
	set := 0
	for i := 0; i < len(limits); i += cmd.Chunk {
		j := min(i+cmd.Chunk, len(limits))
		if _, err := e.c.SetHoldings(e.ctx, limits[i:j]); err != nil {
			p.end()
			return fmt.Errorf("after %d of %d holdings: %w", set, len(limits), err)
		}
		set = j
		p.update(set)
	}
	p.end()
	if e.flags.JSON {
		return e.printJSON(map[string]int{"set": set})
	}
	fmt.Fprintf(e.stdout, "set %d holdings from %s\n", set, cmd.File)
	return nil
}

// Run shows the holdings the flags select, or with --mine the caller's quotas.
func (cmd *QuotaGetCmd) Run(e *cliEnv) error {
	if cmd.Mine {
		if len(cmd.Holder) > 0 || len(cmd.Source) > 0 {
			return usageError("quota get: --mine takes no --holder or --source")
		}
		return cmd.mine(e)
	}
	q := client.HoldingFilter{Holders: cmd.Holder, Resources: cmd.Resource}
	for _, s := range cmd.Source {
		if s == "-" {
			q.NullSource = true
		} else {
			q.Sources = append(q.Sources, s)
		}
	}
	hs, err := e.c.FindHoldings(e.ctx, q)
	if err != nil {
		return err
	}
	return e.show(map[string]any{"holdings": hs}, func() error { return holdingsTable(e, hs) })
}

// usageBar draws usage against limit: [#####.....] 5/10.
func usageBar(usage, limit int64) string {
	const width = 10
	var n int64
	switch {
	case limit > 0:
		n = min(max(usage, 0)*width/limit, width)
	case usage > 0:
		n = width
	}
	return fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("#", int(n)), strings.Repeat(".", int(width-n)), usage, limit)
}

func holdingsTable(e *cliEnv, hs []client.Holding) error {
	tw := e.table("HOLDER", "SOURCE", "RESOURCE", "LIMIT", "USAGE", "PENDING", "USED")
	for _, h := range hs {
		row(tw, h.Holder, srcString(h.Source), h.Resource, h.Limit, h.Usage(), h.Pending(), usageBar(h.Usage(), h.Limit))
	}
	return tw.Flush()
}

// Run deletes the holding.
func (cmd *QuotaDeleteCmd) Run(e *cliEnv) error {
	if err := e.c.DeleteHoldings(e.ctx, []client.HoldingKey{{Holder: cmd.Holder, Source: parseSource(cmd.Source), Resource: cmd.Resource}}); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]any{"deleted": []client.HoldingKey{{Holder: cmd.Holder, Source: parseSource(cmd.Source), Resource: cmd.Resource}}})
	}
	fmt.Fprintf(e.stdout, "deleted the holding %s %s %s\n", cmd.Holder, cmd.Source, cmd.Resource)
	return nil
}

// mine shows the caller's quotas: project -> resource, with a bar each for
// the member's quota and the project's.
func (cmd *QuotaGetCmd) mine(e *cliEnv) error {
	qs, err := e.c.GetQuotas(e.ctx)
	if err != nil {
		return err
	}
	if len(cmd.Resource) > 0 {
		keep := map[string]bool{}
		for _, r := range cmd.Resource {
			keep[r] = true
		}
		for _, rs := range qs {
			for r := range rs {
				if !keep[r] {
					delete(rs, r)
				}
			}
		}
	}
	return e.show(qs, func() error {
		tw := e.table("PROJECT", "RESOURCE", "LIMIT", "USAGE", "PENDING", "USED", "PROJECT USED")
		for _, p := range sortedNames(qs) {
			for _, r := range sortedNames(qs[p]) {
				q := qs[p][r]
				row(tw, p, r, q.Limit, q.Usage, q.Pending, usageBar(q.Usage, q.Limit), usageBar(q.ProjectUsage, q.ProjectLimit))
			}
		}
		return tw.Flush()
	})
}
