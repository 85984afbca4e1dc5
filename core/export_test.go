package core

// HubWaiters counts the waiters on instance id that the client's host would
// wake; for tests.
func HubWaiters(c *Client, id string) int {
	if c.hub == nil {
		return 0
	}
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	return len(c.hub.waiters[id])
}

// NewClientOf is the runtime's client reading and sending through p (a
// wrapper of the runtime's provider); for tests.
func NewClientOf(rt *Runtime, p Provider) *Client {
	c := *rt.Client()
	c.p = p
	return &c
}
