package settings

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/credential"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/web"
)

// The settings pages make the same changes as the JSON API, through the
// same functions, as HTML forms (each with the CSRF token). A change the
// policy wants a fresh step-up for sends the browser to the step-up pages,
// which bring it back here once the step-up passes; a refusal is shown on
// the page with its message.

const (
	settingsPage = web.Prefix + "settings"
	// signInPage is where a settings page sends a browser without a
	// session. A form's own path would be no place to come back to: it
	// takes only POSTs.
	signInPage = web.Prefix + "login?rd=" + settingsPage
	stepUpPage = web.Prefix + "step-up"
	// afterStepUp is where a step-up a form began returns to: the
	// settings page, which asks for the change again.
	afterStepUp = settingsPage + "?done=verified"
	// afterPhoneChange is where a confirmed security phone returns to.
	afterPhoneChange = settingsPage + "?done=phone_changed"
)

// doneMessage is what the settings page says after a change (the done
// query parameter names it; anything else says nothing).
func doneMessage(key string) string {
	switch key {
	case "verified":
		return "Thanks, you're verified. Please make your change again."
	case "device_removed":
		return msgDeviceRemoved
	case "factor_removed":
		return msgFactorRemoved
	case "totp_added":
		return msgTOTPAdded
	case "questions_saved":
		return msgQuestionsSaved
	case "phone_changed":
		return "Your security phone is changed."
	case "passkey_added":
		return "Your passkey is added. Next time you can sign in with it."
	}
	return accountDoneMessage(key)
}

// page shows the settings: the registered devices, the second factors, the
// security phone, and the forms that change them.
func (s *Room) page(w http.ResponseWriter, r *http.Request) error {
	id, err := s.Sessions.Require(r)
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return s.showSettings(w, r, id, http.StatusOK, "", doneMessage(r.URL.Query().Get("done")))
}

func (s *Room) showSettings(w http.ResponseWriter, r *http.Request, id session.Identity, status int, errMsg, msg string) error {
	ctx := r.Context()
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	ds, err := s.Devices.List(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	devices := make([]web.Item, 0, len(ds))
	for _, d := range ds {
		devices = append(devices, web.Item{ID: d.ID, Name: d.Name, Added: readable(d.CreatedAt), LastUsed: readable(d.LastUsedAt)})
	}
	fs, err := s.Factors.FactorsOf(ctx, id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	factors := make([]web.Item, 0, len(fs))
	for _, f := range fs {
		factors = append(factors, web.Item{ID: f.ID, Kind: kindLabel(f.Kind), Name: f.Name, Added: readable(f.CreatedAt)})
	}
	sessions, err := s.sessionItems(ctx, id)
	if err != nil {
		return err
	}
	phone := ""
	if id.User.SecurityPhone != "" {
		f, _ := s.Facts.Phone(ctx, id.User.SecurityPhone)
		phone = f.Masked
	}
	s.Site.Render(w, r, status, "settings", web.PageData{Title: "Security settings", CSRF: token, Error: errMsg, Message: msg,
		Devices: devices, Factors: factors, Phone: phone, Sessions: sessions, Username: id.User.Username,
		Products: id.User.Products})
	return nil
}

// readable is a time as the settings page shows it. The gateway does not
// know the person's time zone, so it says UTC.
func readable(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2 January 2006, 15:04 UTC")
}

// kindLabel names a kind of second factor for people.
func kindLabel(kind string) string {
	switch kind {
	case "totp":
		return "Authenticator app"
	case "questions":
		return "Challenge questions"
	case credential.KindPasskey:
		return "Passkey"
	}
	return kind
}

// pageRefusal answers a settings form that was refused: a browser without a
// session signs in, a change the policy wants a fresh step-up for goes to
// the step-up pages (the step-up has begun, see allowed), and a refusal the
// person can act on is shown on the settings page with its message. Any
// other failure is the error page's.
func (s *Room) pageRefusal(w http.ResponseWriter, r *http.Request, id session.Identity, err error) error {
	var e *web.Error
	if !errors.As(err, &e) || e.Status >= 500 {
		return err
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		http.Redirect(w, r, signInPage, redirectStatus(r))
		return nil
	case len(e.StepUp) > 0:
		http.Redirect(w, r, stepUpPage, http.StatusSeeOther)
		return nil
	}
	s.Log.DebugContext(r.Context(), "settings form refused", "reason", e.Reason)
	return s.showSettings(w, r, id, e.Status, e.Message, "")
}

// redirectStatus is 302 for a page and 303 after a form, so that the
// browser follows with a GET.
func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodGet {
		return http.StatusFound
	}
	return http.StatusSeeOther
}

// done sends the browser back to the settings page after a change, saying
// what changed (post/redirect/get: reloading it repeats nothing).
func done(w http.ResponseWriter, r *http.Request, key string) error {
	http.Redirect(w, r, settingsPage+"?done="+key, http.StatusSeeOther)
	return nil
}

// form reads a settings form: the CSRF check first, then the session.
func (s *Room) form(w http.ResponseWriter, r *http.Request) (session.Identity, error) {
	if err := web.ReadForm(w, r); err != nil {
		return session.Identity{}, err
	}
	return s.Sessions.Require(r)
}

func (s *Room) removeDeviceForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		err = s.removeDevice(w, r, id, r.PostFormValue("id"), afterStepUp)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "device_removed")
}

func (s *Room) removeFactorForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		err = s.removeFactor(w, r, id, r.PostFormValue("id"), afterStepUp)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "factor_removed")
}

// phoneForm starts changing the security phone; the step-up pages offer the
// code to the new number, and bring the person back once it is typed.
func (s *Room) phoneForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		_, _, err = s.changePhone(w, r, id, r.PostFormValue("phone"), afterStepUp, afterPhoneChange)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	http.Redirect(w, r, stepUpPage, http.StatusSeeOther)
	return nil
}

// totpForm starts adding an authenticator app and shows its key, as a QR
// code and as text, with the form for its first code.
func (s *Room) totpForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	var key totpKey
	if err == nil {
		key, err = s.beginTOTP(w, r, id, afterStepUp)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	s.Site.Render(w, r, http.StatusOK, "totp", web.PageData{Title: "Add an authenticator app", CSRF: token,
		Message: "Scan this code with your authenticator app, or type the key below into it. Then enter the code the app shows.",
		Secret:  key.Secret, QRCode: key.QRCode})
	return nil
}

func (s *Room) totpConfirmForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		err = s.confirmTOTP(r, id, r.PostFormValue("code"), r.PostFormValue("name"))
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "totp_added")
}

// questionsPage shows the challenge questions to choose from.
func (s *Room) questionsPage(w http.ResponseWriter, r *http.Request) error {
	id, err := s.Sessions.Require(r)
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return s.showQuestions(w, r, id, http.StatusOK, "")
}

func (s *Room) showQuestions(w http.ResponseWriter, r *http.Request, id session.Identity, status int, errMsg string) error {
	token, err := s.Site.CSRFToken(w, r)
	if err != nil {
		return web.Unavailable(err)
	}
	fs, err := s.Factors.FactorsOf(r.Context(), id.User.ID)
	if err != nil {
		return web.Unavailable(err)
	}
	msg := fmt.Sprintf("Choose at least %d questions and answer them; leave the others blank. Capitals, spaces and punctuation don't matter.", credential.MinAnswers)
	for _, f := range fs {
		if f.Kind == "questions" {
			msg += " Your answers replace the ones you gave before."
			break
		}
	}
	var qs []web.Choice
	for _, q := range credential.Questions() {
		qs = append(qs, web.Choice{Value: q.ID, Label: q.Text})
	}
	s.Site.Render(w, r, status, "questions", web.PageData{Title: "Challenge questions", CSRF: token, Error: errMsg,
		Message: msg, Questions: qs})
	return nil
}

// questionsForm saves the questions answered (a blank answer is a question
// not chosen). Answers to change are asked for again on the questions page.
func (s *Room) questionsForm(w http.ResponseWriter, r *http.Request) error {
	id, err := s.form(w, r)
	if err == nil {
		answers := map[string]string{}
		for _, q := range credential.Questions() {
			if a := r.PostFormValue("answer_" + q.ID); strings.TrimSpace(a) != "" {
				answers[q.ID] = a
			}
		}
		err = s.setQuestions(w, r, id, answers, afterStepUp)
	}
	var e *web.Error
	if errors.As(err, &e) && answersRefused(err) {
		s.Log.DebugContext(r.Context(), "settings form refused", "reason", e.Reason)
		return s.showQuestions(w, r, id, e.Status, e.Message)
	}
	if err != nil {
		return s.pageRefusal(w, r, id, err)
	}
	return done(w, r, "questions_saved")
}
