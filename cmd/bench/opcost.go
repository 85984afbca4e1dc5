package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/test/azurite"
)

// OpCost is what one kind of storage operation costs the storage: how many
// of it 8 goroutines get done per second, the storage process's CPU time per
// operation, and its price in table inserts (its CPU time over an insert's).
// The throughput targets count operations as if each cost one insert; this
// says how far that holds.
type OpCost struct {
	Kind      string  `json:"kind"`
	OpsPerSec float64 `json:"opsPerSec"`
	// CPUPerOp is the storage process's CPU time per operation, in
	// microseconds (0 when its process is not known).
	CPUPerOp float64 `json:"storageCpuMicrosPerOp"`
	// Inserts is the price in table inserts: by CPU when known, else by rate.
	Inserts float64 `json:"priceInInserts"`
}

// opCost measures the kinds of operations an episode and a message cost,
// each for d with 8 goroutines: single inserts (C), entity group
// transactions of 3 entities of 1 KiB (an episode's instance, history and
// pending rows), queue puts of 1 KiB (the queue grows), the life of one
// message in a short queue (put, get, delete: a control message's three
// operations), and dequeues of an empty queue (idle polling).
func opCost(ctx context.Context, conn string, storagePID int, d time.Duration) ([]OpCost, error) {
	tsvc, err := aztables.NewServiceClientFromConnectionString(azurite.Expand(conn), nil)
	if err != nil {
		return nil, fmt.Errorf("opcost: %w", err)
	}
	qsvc, err := azqueue.NewServiceClientFromConnectionString(azurite.Expand(conn), nil)
	if err != nil {
		return nil, fmt.Errorf("opcost: %w", err)
	}
	const table, queue, cycle, empty = "benchopcost", "benchopcost", "benchopcostcycle", "benchopcostempty"
	if _, err := tsvc.CreateTable(ctx, table, nil); err != nil {
		return nil, fmt.Errorf("opcost: create table: %w", err)
	}
	defer tsvc.DeleteTable(context.WithoutCancel(ctx), table, nil)
	for _, q := range []string{queue, cycle, empty} {
		if _, err := qsvc.CreateQueue(ctx, q, nil); err != nil {
			return nil, fmt.Errorf("opcost: create queue: %w", err)
		}
		defer qsvc.DeleteQueue(context.WithoutCancel(ctx), q, nil)
	}
	tc, qc, mq, ec := tsvc.NewClient(table), qsvc.NewQueueClient(queue), qsvc.NewQueueClient(cycle), qsvc.NewQueueClient(empty)
	value := strings.Repeat("x", 1024)

	// rate runs op from 8 goroutines for d; op returns how many operations it did.
	rate := func(op func(g, i int) (int, error)) (float64, error) {
		var n atomic.Int64
		var firstErr atomic.Value
		start := time.Now()
		stop := start.Add(d)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := 0; time.Now().Before(stop) && ctx.Err() == nil; i++ {
					k, err := op(g, i)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(int64(k))
				}
			})
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, err
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	entity := func(pk, rk string) []byte {
		b, _ := json.Marshal(map[string]string{"PartitionKey": pk, "RowKey": rk, "Value": value})
		return b
	}
	kinds := []struct {
		kind string
		op   func(g, i int) (int, error)
	}{
		{"table insert, 1 small entity (C)", func(g, i int) (int, error) {
			e := fmt.Sprintf(`{"PartitionKey":"s%d","RowKey":"r%09d","Value":%d}`, g, i, i)
			_, err := tc.AddEntity(ctx, []byte(e), nil)
			return 1, err
		}},
		{"table batch, 3 entities of 1 KiB", func(g, i int) (int, error) {
			pk := fmt.Sprintf("b%d", g)
			var acts []aztables.TransactionAction
			for j := range 3 {
				acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd,
					Entity: entity(pk, fmt.Sprintf("r%09d-%d", i, j))})
			}
			_, err := tc.SubmitTransaction(ctx, acts, nil)
			return 1, err
		}},
		{"queue put, 1 KiB", func(int, int) (int, error) {
			_, err := qc.EnqueueMessage(ctx, value, nil)
			return 1, err
		}},
		{"queue put + get + delete, short queue", func(int, int) (int, error) {
			if _, err := mq.EnqueueMessage(ctx, value, nil); err != nil {
				return 0, err
			}
			resp, err := mq.DequeueMessage(ctx, nil)
			if err != nil || len(resp.Messages) == 0 {
				return 2, err
			}
			m := resp.Messages[0]
			_, err = mq.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
			return 3, err
		}},
		{"queue get, empty queue", func(int, int) (int, error) {
			_, err := ec.DequeueMessage(ctx, nil)
			return 1, err
		}},
	}
	cpu := func() time.Duration {
		if storagePID == 0 {
			return 0
		}
		u, err := procUsage(storagePID)
		if err != nil {
			return 0
		}
		return u.CPU
	}
	var out []OpCost
	for _, k := range kinds {
		before := cpu()
		r, err := rate(k.op)
		if err != nil {
			return nil, fmt.Errorf("opcost: %s: %w", k.kind, err)
		}
		c := OpCost{Kind: k.kind, OpsPerSec: r}
		if used := cpu() - before; used > 0 && r > 0 {
			c.CPUPerOp = float64(used.Microseconds()) / (r * d.Seconds())
		}
		out = append(out, c)
	}
	for i := range out {
		if out[0].CPUPerOp > 0 && out[i].CPUPerOp > 0 {
			out[i].Inserts = out[i].CPUPerOp / out[0].CPUPerOp
		} else {
			out[i].Inserts = out[0].OpsPerSec / out[i].OpsPerSec
		}
	}
	return out, nil
}

func writeOpCost(w io.Writer, costs []OpCost, format string) error {
	if format == "json" {
		return writeJSON(w, costs)
	}
	if format == "csv" {
		fmt.Fprintln(w, "kind,ops_per_sec,storage_cpu_us_per_op,price_in_inserts")
		for _, c := range costs {
			fmt.Fprintf(w, "%q,%.1f,%.0f,%.2f\n", c.Kind, c.OpsPerSec, c.CPUPerOp, c.Inserts)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tops/s (8 goroutines)\tAzurite CPU per op\tprice in inserts\t")
	for _, c := range costs {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f µs\t%.2f\t\n", c.Kind, c.OpsPerSec, c.CPUPerOp, c.Inserts)
	}
	return tw.Flush()
}
