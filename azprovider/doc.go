// Package azprovider is the Azure Storage provider of azdurable: core.Provider
// and core.TaskHubAdmin on Azure Tables, Queues and Blobs (or Azurite).
//
//	p, err := azprovider.New(ctx, azprovider.Options{
//		ConnectionString: "UseDevelopmentStorage=true", // or an account's connection string
//		TaskHub:          "orders",
//		Partitions:       16,
//		CreateIfMissing:  true,
//	})
//
// # Storage layout (task hub "hub", P partitions)
//
//	table     hubState             all state; PartitionKey p00…pNN is the partition
//	queues    hub-control-NN       one control queue per partition
//	          hub-workitems        activities offloaded to any host
//	blobs     hub-payloads         what does not fit a property or a message (gzip)
//	          hub-leases           taskhub.json {partitions, createdAt, formatVersion}; partition leases
//
// RowKey ranges of a partition are listed in keys.go; instance ids are
// escaped character by character (keys.go), so any legal id works and
// prefix queries run on the escaped form.
//
// # Commit
//
// Each episode is one entity group transaction guarded by the ETag of its
// instance row (commit.go). Pending timers and activities are packed into one
// row per instance (pending.go), so that any episode fits one transaction.
// Several episodes share a transaction while they fit; a rejected
// transaction names its failing operation, whose episode gets
// core.ErrConflict while the rest is submitted again.
//
// # Limits the provider enforces itself
//
// Azurite does not enforce several Azure limits, so every entity and
// transaction is checked before it is sent: 1 MiB per entity (Azure's size
// formula), 252 properties, 64 KiB per binary and 32K characters per string
// property, keys of at most 512 characters without / \ # ? or control
// characters, 100 operations and one PartitionKey per transaction. The
// request body of a transaction is kept under 3.5 MiB (Azure allows 4 MiB).
//
// # Measured behaviour it relies on (Azurite 3.37, SDKs in go.mod)
//
//   - A rejected transaction is answered 202; the failing operation's status,
//     code and index ("<n>:" in the message) are in the multipart body. The
//     SDK returns neither that index nor the per-operation ETags of a
//     successful transaction, so a per-call pipeline policy captures the body.
//   - The continuation of a query (NextRowKey) is opaque (base64 on Azurite):
//     it is handed back, never compared with keys.
//   - Queue text travels as XML without base64: control characters and
//     U+FFFE/U+FFFF are mangled, XML specials and other unicode survive. The
//     JSON encoding escapes the former, so messages are stored as JSON text.
//   - A queue message with TimeToLive -1 never expires (the default is 7 days).
//   - Azurite refuses an update (Update, InsertReplace, Merge — also inside a
//     transaction) whose JSON body exceeds 1 MiB, base64 included, with
//     400 EntityTooLarge; inserts are not checked. Values kept in a row are
//     therefore at most 720 KiB; larger ones go to blobs.
//
// # Retries and errors
//
// Transient faults (408, 429, 5xx, connection failures) are retried with
// bounded exponential backoff by the Azure SDK pipeline of each client
// (Options.Retry), and nowhere else. What is left is returned as a
// *core.StorageError naming the operation and the resource, never holding a
// secret. A transaction retried by the pipeline after its response was lost
// is recognised by the CommitID stored in the instance row.
//
// # Operation counts
//
// Provider.Stats counts storage calls by kind. Measured: committing an
// episode is 1 table.batch; LoadInstance is 1 table.read + 1 table.query;
// a commit whose token is not in the provider's cache adds 1 table.read.
// One hello sequence of 5 activities costs 9 operations end to end, 24 with
// every activity through the work-item queue (idle polls left out; see
// TestAzuriteHelloSequenceBudget and docs/azure-provider.md).
package azprovider
