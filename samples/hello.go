package samples

import "github.com/azdurable/azdurable/core"

// HelloCities are the names HelloSequence greets when its input is empty.
func HelloCities() []string { return []string{"Tokyo", "Seattle", "London", "Cairo", "Lima"} }

// HelloSequence greets each name in turn, one activity after the other, and
// returns the greetings in order. With no names it greets HelloCities: five
// activities.
func HelloSequence(ctx *core.OrchestrationContext, names []string) ([]string, error) {
	if len(names) == 0 {
		names = HelloCities()
	}
	greetings := make([]string, 0, len(names))
	for _, name := range names {
		g, err := core.CallActivity[string](ctx, SayHello, name).Await(ctx)
		if err != nil {
			return nil, err
		}
		greetings = append(greetings, g)
	}
	return greetings, nil
}

// SayHello is the activity of HelloSequence.
func SayHello(_ core.ActivityContext, name string) (string, error) {
	return Greeting(name), nil
}

// Greeting is what SayHello returns for name.
func Greeting(name string) string { return "Hello, " + name + "!" }
