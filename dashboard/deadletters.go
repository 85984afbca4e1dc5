package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/azdurable/azdurable/core"
)

type deadLettersData struct {
	Rows     []*core.DeadLetter
	NextURL  string
	FirstURL string
	Paged    bool
}

func (h *handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := defaultPageSize
	if s := q.Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Page size %q: use a number from 1 to %d.", s, maxPageSize), nil)
			return
		}
		size = n
	}
	cont := q.Get("page")
	page, err := h.hub.Provider.ListDeadLetters(r.Context(), size, cont)
	if err != nil {
		h.failErr(w, r, "List dead letters", err)
		return
	}
	d := deadLettersData{Rows: page.DeadLetters, Paged: cont != "", FirstURL: "deadletters"}
	if size != defaultPageSize {
		d.FirstURL += "?" + url.Values{"size": {strconv.Itoa(size)}}.Encode()
	}
	if page.Continuation != "" {
		next := url.Values{"page": {page.Continuation}}
		if size != defaultPageSize {
			next.Set("size", strconv.Itoa(size))
		}
		d.NextURL = "deadletters?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "deadletters", "Dead letters", "deadletters", d)
}

type deadLetterData struct {
	DL *core.DeadLetter
}

func (h *handler) deadLetter(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	dl, err := h.hub.DeadLetter(r.Context(), id)
	if err != nil {
		h.failErr(w, r, fmt.Sprintf("Dead letter %q", id), err)
		return
	}
	h.render(w, r, http.StatusOK, "deadletter", "Dead letter", "deadletters", deadLetterData{DL: dl})
}
