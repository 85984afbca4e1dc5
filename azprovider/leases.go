package azprovider

import "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

// LeaseContainer is the <hub>-leases container, which holds taskhub.json and
// the partition ownership blobs (see package leases). CreateTaskHub creates
// it; the client shares the provider's credentials and retry policy.
func (p *Provider) LeaseContainer() *container.Client { return p.leases }
