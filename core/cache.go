package core

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cachedInstance is an instance kept in memory between episodes: its
// executor, blocked where the code waits, and the token of its last commit.
type cachedInstance struct {
	exec  *executor
	token CommitToken
	state *InstanceState
}

// executorCache is an LRU of cached instances. An entry is taken out while an
// episode runs and put back after its commit, so an evicted executor is never
// in use.
type executorCache struct {
	mu  sync.Mutex
	lru *lru.Cache[string, *cachedInstance]
}

func newExecutorCache(size int) *executorCache {
	if size <= 0 {
		return &executorCache{}
	}
	c, _ := lru.NewWithEvict(size, func(_ string, ci *cachedInstance) {
		if ci.exec != nil {
			ci.exec.close()
		}
	})
	return &executorCache{lru: c}
}

// take removes and returns the instance's entry, or nil.
func (c *executorCache) take(id string) *cachedInstance {
	if c.lru == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ci, ok := c.lru.Peek(id)
	if !ok {
		return nil
	}
	// Remove without closing: the caller owns the executor now.
	taken := ci.exec
	ci.exec = nil
	c.lru.Remove(id)
	ci.exec = taken
	return ci
}

// put stores an entry; the executor is closed when it is evicted.
func (c *executorCache) put(id string, ci *cachedInstance) {
	if c.lru == nil {
		ci.exec.close()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Add(id, ci)
}

// drop closes and forgets an entry.
func (c *executorCache) drop(id string) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(id)
}

// dropWhere closes and forgets the entries for which match is true.
func (c *executorCache) dropWhere(match func(id string, ci *cachedInstance) bool) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.lru.Keys() {
		if ci, ok := c.lru.Peek(id); ok && match(id, ci) {
			c.lru.Remove(id)
		}
	}
}

func (c *executorCache) len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}
