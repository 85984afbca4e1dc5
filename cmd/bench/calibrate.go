package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/azdurable/azdurable/test/azurite"
)

// calibrate measures C, the raw table inserts per second the storage takes
// from 8 goroutines, so that the targets can be stated against it.
func calibrate(ctx context.Context, conn string, d time.Duration) (float64, error) {
	svc, err := aztables.NewServiceClientFromConnectionString(azurite.Expand(conn), nil)
	if err != nil {
		return 0, fmt.Errorf("calibration: %w", err)
	}
	const table = "benchcalibration"
	if _, err := svc.CreateTable(ctx, table, nil); err != nil {
		return 0, fmt.Errorf("calibration: create table: %w", err)
	}
	defer svc.DeleteTable(context.WithoutCancel(ctx), table, nil)
	tc := svc.NewClient(table)
	var n atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				e := fmt.Sprintf(`{"PartitionKey":"g%d","RowKey":"r%09d","Value":%d}`, g, i, i)
				if _, err := tc.AddEntity(ctx, []byte(e), nil); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("calibration: insert: %w", err)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
