package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
)

// ReconcileCmd compares a service's count of its usage with the ledger
// (POST /account/v1.0/reconcile) and, with --fix, sets the ledger right.
type ReconcileCmd struct {
	ClientFlags `embed:""`
	File        string        `name:"file" required:"" help:"A CSV file of holder,source,resource,usage lines: the service's own count of what it holds (a header line is skipped; source - is the null source; --file - reads stdin)."`
	OlderThan   time.Duration `name:"older-than" default:"1h" help:"A pending commission of the service issued longer ago than this is an orphan (default ${default})."`
	Fix         bool          `name:"fix" help:"Set the ledger right in one step: reject the orphans and correct every holding that differs by one forced commission (reason RECONCILE:<service>)."`
	Service     string        `name:"service" help:"The service whose holdings these are (with an admin's token; a service's token reconciles its own)."`
}

// Help is the detail of `reconcile --help`.
func (cmd *ReconcileCmd) Help() string {
	return `A holding agrees with the count when the count lies within its
[usage_min, usage_max] once the orphans are rejected (a commission still in
flight may or may not have happened in the service yet); otherwise the
correction moves its usage by the difference shown. The table is printed
first; with --fix, what was done follows: the orphans rejected and the
correcting commission (one per 1,000 holdings). The count is absolute, so
running it again finds nothing left to do.`
}

// Run reads the count, reconciles, and prints the table and what was done.
func (cmd *ReconcileCmd) Run(e *cliEnv) error {
	var r io.Reader = e.stdin
	if cmd.File != "-" {
		f, err := os.Open(cmd.File)
		if err != nil {
			return usageError("reconcile: %v", err)
		}
		defer f.Close()
		r = f
	}
	usage, err := readUsage(r)
	if err != nil {
		return usageError("reconcile: %s: %v", cmd.File, err)
	}
	if cmd.OlderThan < 0 {
		return usageError("--older-than must not be negative")
	}
	age := int64(cmd.OlderThan / time.Second)
	res, err := e.c.Reconcile(e.ctx, client.ReconcileRequest{Service: cmd.Service, Usage: usage, OlderThan: &age, Fix: cmd.Fix})
	if err != nil {
		return err
	}
	return e.show(res, func() error { return reconcileTable(e, res) })
}

// reconcileTable prints a reconciliation for people.
func reconcileTable(e *cliEnv, res *client.Reconciliation) error {
	age := time.Duration(res.OlderThan) * time.Second
	if len(res.Holdings) > 0 {
		tw := e.table("HOLDER", "SOURCE", "RESOURCE", "LIMIT", "USAGE_MIN", "USAGE_MAX", "ACTUAL", "DIFFERENCE")
		for _, d := range res.Holdings {
			row(tw, d.Holder, srcString(d.Source), d.Resource, d.Limit, d.UsageMin, d.UsageMax, d.Actual, fmt.Sprintf("%+d", d.Difference))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(res.Orphans) > 0 {
		tw := e.table("ORPHAN", "NAME", "ISSUED", "AGE", "PROVISIONS")
		for _, o := range res.Orphans {
			row(tw, o.Serial, orDash(o.Name), fmtTime(o.IssueTime), time.Duration(o.Age)*time.Second, len(o.Provisions))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, k := range res.Unknown {
		fmt.Fprintf(e.stdout, "not in the ledger (not corrected): %s %s %s\n", k.Holder, srcString(k.Source), k.Resource)
	}
	fmt.Fprintf(e.stdout, "service %s as of %s: %d holdings differ, %d orphans (pending longer than %s)\n",
		res.Service, fmtTime(res.Time), len(res.Holdings), len(res.Orphans), age)
	switch {
	case !res.Fixed && len(res.Holdings)+len(res.Orphans) > 0:
		fmt.Fprintln(e.stdout, "run again with --fix to set them right")
	case res.Fixed && len(res.Holdings)+len(res.Orphans) == 0:
		fmt.Fprintln(e.stdout, "nothing to fix")
	case res.Fixed:
		fmt.Fprintf(e.stdout, "fixed: rejected orphans %s; correcting commissions %s\n", serialList(res.Rejected), serialList(res.Corrections))
	}
	return nil
}

func serialList(s []int64) string {
	if len(s) == 0 {
		return "none"
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(out, ", ")
}

// readUsage reads a CSV of holder,source,resource,usage.
func readUsage(r io.Reader) ([]client.ActualUsage, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	out := []client.ActualUsage{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(rec[3]), 10, 64)
		if err != nil || n < 0 {
			if line == 1 && strings.EqualFold(strings.TrimSpace(rec[3]), "usage") {
				continue // the header
			}
			pl, _ := cr.FieldPos(3)
			return nil, fmt.Errorf("line %d: usage %q: want a whole number, 0 or more", pl, rec[3])
		}
		u := client.ActualUsage{Usage: n}
		u.Holder, u.Source, u.Resource = rec[0], parseSource(rec[1]), rec[2]
		out = append(out, u)
	}
}
