package samples

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
)

// The bookings of a trip, made in this order and cancelled in reverse.
const (
	BookingFlight = "flight"
	BookingHotel  = "hotel"
	BookingCar    = "car"
)

// TripSteps lists the bookings of a trip in the order BookTrip makes them.
func TripSteps() []string { return []string{BookingFlight, BookingHotel, BookingCar} }

// Error types of the saga, as ApplicationError.Type.
const (
	// TripNotBookedType: a booking failed and the ones before it were cancelled.
	TripNotBookedType = "samples.TripNotBooked"
	// NoAvailabilityType: a booking failed for want of availability; not retried.
	NoAvailabilityType = "samples.NoAvailability"
)

// TripRequest asks for a trip.
type TripRequest struct {
	Traveler    string `json:"traveler"`
	Destination string `json:"destination"`
	// FailAt names the booking (one of TripSteps) that finds no
	// availability, to show compensation. Empty: every booking succeeds.
	FailAt string `json:"failAt,omitempty"`
}

// Confirmation is one booking made.
type Confirmation struct {
	Kind string `json:"kind"`
	Code string `json:"code"`
}

// TripBooking is what BookTrip returns when every booking succeeded.
type TripBooking struct {
	Traveler      string         `json:"traveler"`
	Destination   string         `json:"destination"`
	Confirmations []Confirmation `json:"confirmations"`
}

// TripStatus is BookTrip's custom status: what is booked and what was
// cancelled so far.
type TripStatus struct {
	Booked    []string `json:"booked"`
	Cancelled []string `json:"cancelled,omitempty"`
}

// BookingRequest is the input of Book.
type BookingRequest struct {
	Kind        string `json:"kind"`
	Traveler    string `json:"traveler"`
	Destination string `json:"destination"`
	Unavailable bool   `json:"unavailable,omitempty"`
}

// bookingRetry retries transient failures of a booking call; a booking that
// finds no availability fails with a non-retriable error and is not retried.
var bookingRetry = core.WithRetry(core.RetryPolicy{MaxAttempts: 3, FirstInterval: time.Second, BackoffCoefficient: 2})

// BookTrip is a saga: it books a flight, a hotel and a car. When a booking
// fails it cancels the bookings already made, newest first, and fails with
// a TripNotBookedType error. Its custom status (TripStatus) shows progress.
func BookTrip(ctx *core.OrchestrationContext, req TripRequest) (TripBooking, error) {
	trip := TripBooking{Traveler: req.Traveler, Destination: req.Destination}
	var status TripStatus
	for _, kind := range TripSteps() {
		in := BookingRequest{Kind: kind, Traveler: req.Traveler, Destination: req.Destination, Unavailable: kind == req.FailAt}
		c, err := core.CallActivity[string](ctx, Book, in, bookingRetry).Await(ctx)
		if err != nil {
			return TripBooking{}, compensateTrip(ctx, &status, trip.Confirmations, kind, err)
		}
		trip.Confirmations = append(trip.Confirmations, Confirmation{Kind: kind, Code: c})
		status.Booked = append(status.Booked, kind)
		if err := ctx.SetCustomStatus(status); err != nil {
			return TripBooking{}, err
		}
	}
	return trip, nil
}

// compensateTrip cancels the bookings made, newest first, and returns the
// saga's failure.
func compensateTrip(ctx *core.OrchestrationContext, status *TripStatus, made []Confirmation, failed string, cause error) error {
	var problems []string
	for _, c := range slices.Backward(made) {
		if _, err := core.CallActivity[core.Void](ctx, CancelBooking, c, bookingRetry).Await(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("cancelling the %s (%s) failed: %v", c.Kind, c.Code, err))
			continue
		}
		status.Cancelled = append(status.Cancelled, c.Kind)
	}
	if err := ctx.SetCustomStatus(status); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s not booked: %s", failed, reason(cause))
	if len(status.Cancelled) > 0 {
		msg += "; cancelled " + strings.Join(status.Cancelled, ", ")
	}
	if len(problems) > 0 {
		msg += "; " + strings.Join(problems, "; ")
	}
	return core.NewApplicationError(TripNotBookedType, msg, true)
}

// reason is the message of the innermost application error inside err (the
// one user code raised, below the wrappers that say which activity or
// sub-orchestration failed), or err's text.
func reason(err error) string {
	var ae *core.ApplicationError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	for ae.Cause != nil {
		ae = ae.Cause
	}
	return ae.Message
}

// Book makes one booking and returns its confirmation code.
func Book(_ core.ActivityContext, b BookingRequest) (string, error) {
	if b.Unavailable {
		return "", core.NewApplicationError(NoAvailabilityType, fmt.Sprintf("no %s available to %s", b.Kind, b.Destination), true)
	}
	return ConfirmationCode(b.Kind, b.Traveler, b.Destination), nil
}

// CancelBooking cancels a booking. Cancelling twice is harmless, as an
// activity that runs at least once must allow.
func CancelBooking(_ core.ActivityContext, _ Confirmation) (core.Void, error) {
	return core.Void{}, nil
}

// ConfirmationCode is the code Book returns.
func ConfirmationCode(kind, traveler, destination string) string {
	return strings.ToUpper(kind[:1]) + "-" + code("booking", kind, traveler, destination)
}

// ExpectedTrip is what BookTrip does for req: the booking it returns when
// ok, otherwise the bookings it cancels, in order.
func ExpectedTrip(req TripRequest) (trip TripBooking, cancelled []string, ok bool) {
	trip = TripBooking{Traveler: req.Traveler, Destination: req.Destination}
	for _, kind := range TripSteps() {
		if kind == req.FailAt {
			for _, c := range slices.Backward(trip.Confirmations) {
				cancelled = append(cancelled, c.Kind)
			}
			return TripBooking{}, cancelled, false
		}
		trip.Confirmations = append(trip.Confirmations, Confirmation{Kind: kind, Code: ConfirmationCode(kind, req.Traveler, req.Destination)})
	}
	return trip, nil, true
}
