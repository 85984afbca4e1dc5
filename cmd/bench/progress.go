package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a bar of the units that have ended, on stderr.
type progress struct {
	w     io.Writer // nil: quiet
	label string

	stop chan struct{}
	wg   sync.WaitGroup
}

func (p *progress) begin(total int, done *atomic.Int64) {
	if p == nil || p.w == nil {
		return
	}
	p.stop = make(chan struct{})
	start := time.Now()
	draw := func() {
		n := int(done.Load())
		const width = 30
		filled := 0
		if total > 0 {
			filled = n * width / total
		}
		fmt.Fprintf(p.w, "\r%-10s [%s%s] %d/%d %5.1fs", p.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
			n, total, time.Since(start).Seconds())
	}
	p.wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				draw()
				fmt.Fprintln(p.w)
				return
			case <-t.C:
				draw()
			}
		}
	})
}

func (p *progress) end() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.stop = nil
}

// printf writes a line of progress (nothing when quiet).
func (p *progress) printf(format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}
