package core

// PartitionFor routes an instance id to one of n partitions:
// fnv1a32(utf8(id)) mod n, the function of the Durable Task Azure Storage
// provider and Netherite. Providers use it for PartitionOf.
func PartitionFor(instanceID string, n int) int {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(instanceID); i++ {
		h ^= uint32(instanceID[i])
		h *= prime32
	}
	return int(h % uint32(n))
}
