package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
)

// restoreView is the new-restore page.
type restoreView struct {
	uiBase
	Text        string
	WebhookURL  string
	MaxNumbers  int
	FileDropped bool // a file came with a page sent without JavaScript: it must be chosen again
	Check       *restoreCheck
}

// uiRestorePage is GET /ui/restore: the form.
func (a *app) uiRestorePage(w http.ResponseWriter, r *http.Request, s sessionRow) {
	a.uiWrite(w, r, http.StatusOK, "restore", a.restoreView(s, restoreInput{}, nil))
}

// restoreView is the new-restore page with what was sent and its check.
func (a *app) restoreView(s sessionRow, in restoreInput, check *restoreCheck) restoreView {
	return restoreView{uiBase: uiBase{Title: "New restore", Nav: "restore", Session: &s},
		Text: in.Text, WebhookURL: in.WebhookURL, MaxNumbers: a.cfg.maxNumbers, FileDropped: in.FileName != "", Check: check}
}

// readRestoreInput reads the restore form (already parsed in memory).
func readRestoreInput(r *http.Request) (restoreInput, error) {
	in := restoreInput{Text: r.PostFormValue("numbers_text"), WebhookURL: r.PostFormValue("webhook_url")}
	if r.MultipartForm == nil || len(r.MultipartForm.File["numbers_file"]) == 0 {
		return in, nil
	}
	fh := r.MultipartForm.File["numbers_file"][0]
	if fh.Filename == "" && fh.Size == 0 {
		return in, nil // the file field, left empty
	}
	data, err := readFormFile(fh)
	if err != nil {
		return in, fmt.Errorf("read uploaded file: %w", err)
	}
	in.File, in.FileName = string(data), fh.Filename
	return in, nil
}

// readFormFile reads an uploaded file whole (its size is bounded by the
// body's).
func readFormFile(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// uiRestore is POST /ui/restore (send) and POST /ui/restore/check (not
// send). Both check the form exactly as the API checks a request, each
// invalid line named. The check shows what a restore would do, with nothing
// sent: htmx asks for the check alone as the form changes, and with
// dry_run=1 (the Preview button) the API's dry run says what each number
// would give now; without JavaScript the page comes back whole. Sending
// submits it as the API does (at most -sync-limit numbers restored now,
// more queued) and shows the job; a form the API would refuse comes back
// with why, and nothing is sent.
func (a *app) uiRestore(send bool) uiHandler {
	return func(w http.ResponseWriter, r *http.Request, s sessionRow) {
		in, err := readRestoreInput(r)
		if err != nil {
			a.uiFail(w, r, &s, err)
			return
		}
		req, check, err := a.checkRestore(in)
		if err == nil && !send && r.PostFormValue("dry_run") == "1" {
			check.Preview, err = a.previewRestore(r.Context(), s.User, req)
		}
		var job Job
		if err == nil && send {
			job, err = a.uiStartJob(r.Context(), s, req)
			if e := (*apiError)(nil); errors.As(err, &e) {
				check.Problem = e.message
			}
		}
		var refused *apiError
		switch {
		case errors.As(err, &refused) || (err == nil && !send):
			status := http.StatusOK
			if refused != nil && r.Header.Get("HX-Request") != "true" {
				status = httpStatus[refused.code]
			}
			a.uiWrite(w, r, status, "restore", a.restoreView(s, in, &check), "preview")
		case err != nil:
			a.uiFail(w, r, &s, err)
		default:
			http.Redirect(w, r, "/ui/jobs/"+job.UUID+"?done=submitted", http.StatusSeeOther)
		}
	}
}

// uiStartJob starts a job for the session's user as the API does, the
// refusals a person can act on as *apiError.
func (a *app) uiStartJob(ctx context.Context, s sessionRow, req bulkRequest) (Job, error) {
	sub, err := a.startJob(ctx, s.User, req, nil)
	switch {
	case errors.Is(err, errTooManyActiveJobs):
		return Job{}, newAPIError(codeRateLimited, fmt.Sprintf(
			"You have %d queued jobs unfinished; wait for one to complete (or cancel one).", a.cfg.maxActiveJobs))
	case isForeignKeyViolation(err):
		return Job{}, newAPIError(codeUnauthorized, "Your user was deleted while this was being sent.")
	}
	return sub.job, err
}
