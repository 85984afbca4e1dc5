package memory

// method names a Provider method whose calls are counted.
type method int

const (
	mSendMessages method = iota
	mOpenPartition
	mClosePartition
	mFetchMessages
	mAbandonMessages
	mDeleteMessages
	mDeadLetterMessages
	mLoadInstance
	mCommit
	mEnqueueActivities
	mFetchActivity
	mRenewActivity
	mCompleteActivity
	mAbandonActivity
	mDeadLetterActivity
	mGetInstance
	mGetHistory
	mQueryInstances
	mPurgeInstance
	mPurgeInstances
	mListDeadLetters
	mReplayDeadLetter
	mDiscardDeadLetter
	mPublishHost
	mListHosts
	mCreateTaskHub
	mDeleteTaskHub
	numMethods
)

var methodNames = [numMethods]string{
	mSendMessages:       "SendMessages",
	mOpenPartition:      "OpenPartition",
	mClosePartition:     "ClosePartition",
	mFetchMessages:      "FetchMessages",
	mAbandonMessages:    "AbandonMessages",
	mDeleteMessages:     "DeleteMessages",
	mDeadLetterMessages: "DeadLetterMessages",
	mLoadInstance:       "LoadInstance",
	mCommit:             "Commit",
	mEnqueueActivities:  "EnqueueActivities",
	mFetchActivity:      "FetchActivity",
	mRenewActivity:      "RenewActivity",
	mCompleteActivity:   "CompleteActivity",
	mAbandonActivity:    "AbandonActivity",
	mDeadLetterActivity: "DeadLetterActivity",
	mGetInstance:        "GetInstance",
	mGetHistory:         "GetHistory",
	mQueryInstances:     "QueryInstances",
	mPurgeInstance:      "PurgeInstance",
	mPurgeInstances:     "PurgeInstances",
	mListDeadLetters:    "ListDeadLetters",
	mReplayDeadLetter:   "ReplayDeadLetter",
	mDiscardDeadLetter:  "DiscardDeadLetter",
	mPublishHost:        "PublishHost",
	mListHosts:          "ListHosts",
	mCreateTaskHub:      "CreateTaskHub",
	mDeleteTaskHub:      "DeleteTaskHub",
}

func (m method) String() string { return methodNames[m] }

// Stats counts the calls of each Provider method since New, failed calls
// included. Tests use it to check how much storage work the runtime does, for
// example that an episode of a cached instance loads nothing.
type Stats struct {
	SendMessages       int64
	OpenPartition      int64
	ClosePartition     int64
	FetchMessages      int64
	AbandonMessages    int64
	DeleteMessages     int64
	DeadLetterMessages int64
	LoadInstance       int64
	Commit             int64
	EnqueueActivities  int64
	FetchActivity      int64
	RenewActivity      int64
	CompleteActivity   int64
	AbandonActivity    int64
	DeadLetterActivity int64
	GetInstance        int64
	GetHistory         int64
	QueryInstances     int64
	PurgeInstance      int64
	PurgeInstances     int64
	ListDeadLetters    int64
	ReplayDeadLetter   int64
	DiscardDeadLetter  int64
	PublishHost        int64
	ListHosts          int64
	CreateTaskHub      int64
	DeleteTaskHub      int64
}

// Stats returns the call counts. Each counter is read atomically; the
// snapshot as a whole is not, so calls running meanwhile may be half counted.
func (p *Provider) Stats() Stats {
	c := func(m method) int64 { return p.calls[m].Load() }
	return Stats{
		SendMessages:       c(mSendMessages),
		OpenPartition:      c(mOpenPartition),
		ClosePartition:     c(mClosePartition),
		FetchMessages:      c(mFetchMessages),
		AbandonMessages:    c(mAbandonMessages),
		DeleteMessages:     c(mDeleteMessages),
		DeadLetterMessages: c(mDeadLetterMessages),
		LoadInstance:       c(mLoadInstance),
		Commit:             c(mCommit),
		EnqueueActivities:  c(mEnqueueActivities),
		FetchActivity:      c(mFetchActivity),
		RenewActivity:      c(mRenewActivity),
		CompleteActivity:   c(mCompleteActivity),
		AbandonActivity:    c(mAbandonActivity),
		DeadLetterActivity: c(mDeadLetterActivity),
		GetInstance:        c(mGetInstance),
		GetHistory:         c(mGetHistory),
		QueryInstances:     c(mQueryInstances),
		PurgeInstance:      c(mPurgeInstance),
		PurgeInstances:     c(mPurgeInstances),
		ListDeadLetters:    c(mListDeadLetters),
		ReplayDeadLetter:   c(mReplayDeadLetter),
		DiscardDeadLetter:  c(mDiscardDeadLetter),
		PublishHost:        c(mPublishHost),
		ListHosts:          c(mListHosts),
		CreateTaskHub:      c(mCreateTaskHub),
		DeleteTaskHub:      c(mDeleteTaskHub),
	}
}
