package samples

import (
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// ApprovalEvent is the external event that carries an ApprovalDecision.
const ApprovalEvent = "approval"

// DefaultApprovalTimeout is how long Approval waits for a decision when the
// request does not say.
const DefaultApprovalTimeout = 72 * time.Hour

// ApprovalRequest asks for a payment to be approved.
type ApprovalRequest struct {
	ID        string `json:"id"`
	Requester string `json:"requester"`
	Amount    int64  `json:"amount"`
	// Timeout is how long to wait for a decision (default DefaultApprovalTimeout).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ApprovalDecision is the data of the ApprovalEvent.
type ApprovalDecision struct {
	Approved bool   `json:"approved"`
	Approver string `json:"approver"`
}

// Outcomes of an approval.
const (
	OutcomeApproved = "approved"
	OutcomeRejected = "rejected"
	// OutcomeExpired: no decision came in time; the request was escalated.
	OutcomeExpired = "expired"
)

// ApprovalResult is what Approval returns.
type ApprovalResult struct {
	RequestID string `json:"requestId"`
	Outcome   string `json:"outcome"`
	Approver  string `json:"approver,omitempty"`
	// Note is the payment receipt when approved, the escalation ticket when expired.
	Note string `json:"note,omitempty"`
}

// Approval asks for approval, then waits for the ApprovalEvent or the
// timeout, whichever comes first. The wait is durable: it survives restarts
// and can last for days without holding anything in memory.
func Approval(ctx *core.OrchestrationContext, req ApprovalRequest) (ApprovalResult, error) {
	result := ApprovalResult{RequestID: req.ID}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	if _, err := core.CallActivity[string](ctx, RequestApproval, req).Await(ctx); err != nil {
		return result, err
	}

	decision := core.WaitForEvent[ApprovalDecision](ctx, ApprovalEvent)
	deadline := ctx.CreateTimer(timeout)
	winner, err := core.WhenAny(ctx, decision, deadline)
	if err != nil {
		return result, err
	}
	if winner == deadline {
		ticket, err := core.CallActivity[string](ctx, Escalate, req).Await(ctx)
		result.Outcome, result.Note = OutcomeExpired, ticket
		return result, err
	}
	deadline.Cancel() // the decision came first: the timer is no longer needed

	d, err := decision.Await(ctx)
	if err != nil {
		return result, err
	}
	result.Approver = d.Approver
	if !d.Approved {
		result.Outcome = OutcomeRejected
		return result, nil
	}
	receipt, err := core.CallActivity[string](ctx, ProcessApproval, req).Await(ctx)
	result.Outcome, result.Note = OutcomeApproved, receipt
	return result, err
}

// RequestApproval notifies the approvers; it returns the notification's text.
func RequestApproval(_ core.ActivityContext, req ApprovalRequest) (string, error) {
	return fmt.Sprintf("approval requested: %s wants %d (request %s)", req.Requester, req.Amount, req.ID), nil
}

// ProcessApproval carries out an approved request; it returns the receipt.
func ProcessApproval(_ core.ActivityContext, req ApprovalRequest) (string, error) {
	return ApprovalReceipt(req), nil
}

// Escalate opens a ticket for a request nobody decided on; it returns the ticket.
func Escalate(_ core.ActivityContext, req ApprovalRequest) (string, error) {
	return EscalationTicket(req), nil
}

// ApprovalReceipt is what ProcessApproval returns for req.
func ApprovalReceipt(req ApprovalRequest) string {
	return fmt.Sprintf("paid %d to %s (receipt %s)", req.Amount, req.Requester, code("receipt", req.ID))
}

// EscalationTicket is what Escalate returns for req.
func EscalationTicket(req ApprovalRequest) string {
	return "ticket " + code("escalation", req.ID)
}

// ExpectedApproval is what Approval returns for req when decision arrives
// in time, or when none does (nil).
func ExpectedApproval(req ApprovalRequest, decision *ApprovalDecision) ApprovalResult {
	r := ApprovalResult{RequestID: req.ID}
	switch {
	case decision == nil:
		r.Outcome, r.Note = OutcomeExpired, EscalationTicket(req)
	case !decision.Approved:
		r.Outcome, r.Approver = OutcomeRejected, decision.Approver
	default:
		r.Outcome, r.Approver, r.Note = OutcomeApproved, decision.Approver, ApprovalReceipt(req)
	}
	return r
}
