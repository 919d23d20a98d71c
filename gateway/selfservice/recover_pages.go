package selfservice

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis/portcullis/gateway/notify"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

const (
	recoverPage = web.Prefix + "recover/"
	// afterPasswordReset is where a recovered password sends the browser:
	// the sign-in page, saying the password is changed.
	afterPasswordReset = web.Prefix + "login?done=password_reset"
)

// methodLabels are the buttons of a recovery's method choice, and
// resendLabels those of the code page.
var (
	methodLabels = map[string]string{
		notify.SMS:   "Text me a code",
		notify.Voice: "Call me with a code",
		notify.Email: "Email me my username",
	}
	resendLabels = map[string]string{
		notify.SMS:   "Text me a new code",
		notify.Voice: "Call me with a new code",
	}
)

// recoveryChoices are the buttons for the methods, as labels names them.
func recoveryChoices(methods []string, labels map[string]string) []web.Choice {
	var out []web.Choice
	for _, m := range methods {
		if l, ok := labels[m]; ok {
			out = append(out, web.Choice{Value: m, Label: l})
		}
	}
	return out
}

func recoveryTitle(kind string) string {
	if kind == recoverUsername {
		return "Forgot username"
	}
	return "Forgot password"
}

// recoveryData is the identify page of a recovery of kind.
func (s *Room) recoveryData(kind string) pageData {
	msg := "Tell us who you are, as your accounts with us know you, and we'll send you your username."
	if kind == recoverPassword {
		msg = "Tell us who you are, and we'll send a security code to the phone on your profile so you can choose a new password."
	}
	return pageData{Title: recoveryTitle(kind), Kind: kind, Questions: s.asksQuestions(kind), Message: msg}
}

// methodMessage is what the method choice says.
func methodMessage(kind string) string {
	if kind == recoverUsername {
		return "Choose how to get your username: a security code to the security phone on your profile, " +
			"or the username by email to the address on file."
	}
	return "Choose how to get a security code. It goes to the security phone on your profile."
}

// codeSentMessage says where a recovery code went, the same whether or not
// the details matched a profile.
func codeSentMessage(channel string) string {
	if channel == notify.Voice {
		return "If your details match a profile, we're calling its security phone with a security code. Enter it below."
	}
	return "If your details match a profile, we've texted a security code to its security phone. Enter it below."
}

func (s *Room) methodData(kind string) pageData {
	return pageData{Title: recoveryTitle(kind), Kind: kind, Message: methodMessage(kind), Support: s.Site.SupportLine(),
		Methods: recoveryChoices(s.Policy.RecoveryRules().Offers(kind), methodLabels)}
}

func (s *Room) recoveryCodeData(kind, channel string) pageData {
	return pageData{Title: recoveryTitle(kind), Kind: kind, Message: codeSentMessage(channel), Support: s.Site.SupportLine(),
		Methods: recoveryChoices(s.Policy.RecoveryRules().Offers(kind), resendLabels)}
}

func (s *Room) newPasswordData() pageData {
	rules := s.Policy.PasswordRules()
	return pageData{Title: "Choose a new password", Message: "Choose the new password of your profile.",
		Hint: fmt.Sprintf("At least %d characters. A few unrelated words make a good one; don't use your name or username.", rules.MinLength)}
}

// recoveryStage shows a step's page when the browser's recovery is at it,
// and otherwise sends it to the start.
func (s *Room) recoveryStage(w http.ResponseWriter, r *http.Request, kind, name string, d func(pendingRecovery) pageData, stages ...string) error {
	p, err := s.loadRecovery(r, kind, stages...)
	var e *web.Error
	if errors.As(err, &e) && e.Status < 500 {
		http.Redirect(w, r, recoverPage+kind, http.StatusFound)
		return nil
	} else if err != nil {
		return err
	}
	return s.show(w, r, http.StatusOK, name, d(p))
}

// recoveryPages are the HTML handlers of a recovery of one kind.
type recoveryPages struct {
	s    *Room
	kind string
}

func (h recoveryPages) identifyPage(w http.ResponseWriter, r *http.Request) error {
	return h.s.show(w, r, http.StatusOK, "recover_identify", h.s.recoveryData(h.kind))
}

func (h recoveryPages) identifyForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	f := RecoveryForm{LastName: r.PostFormValue("last_name"), Username: r.PostFormValue("username"),
		TaxIDLast4: r.PostFormValue("tax_id_last4"), DateOfBirth: r.PostFormValue("date_of_birth")}
	if _, err := h.s.identifyRecovery(w, r, h.kind, f); err != nil {
		d := h.s.recoveryData(h.kind)
		var fe *FieldError
		if errors.As(err, &fe) && fe.Refusal.Reason == policies.ReasonBadRequest {
			// A form the person typed wrong keeps the name and username;
			// the secrets are never shown again.
			d.Values = map[string]string{"last_name": f.LastName, "username": f.Username}
		}
		return h.s.refused(w, r, "recover_identify", d, err)
	}
	http.Redirect(w, r, recoverPage+h.kind+"/method", http.StatusSeeOther)
	return nil
}

func (h recoveryPages) methodPage(w http.ResponseWriter, r *http.Request) error {
	return h.s.recoveryStage(w, r, h.kind, "recover_method", func(pendingRecovery) pageData { return h.s.methodData(h.kind) },
		stageMethod, stageCode)
}

func (h recoveryPages) sendForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	method := r.PostFormValue("method")
	done, err := h.s.sendRecovery(w, r, h.kind, method)
	if err != nil {
		d := h.s.methodData(h.kind)
		if p, lerr := h.s.loadRecovery(r, h.kind, stageCode); lerr == nil {
			d = h.s.recoveryCodeData(h.kind, p.v.Channel)
			return h.s.refused(w, r, "recover_code", d, err)
		}
		return h.s.refused(w, r, "recover_method", d, err)
	}
	if done {
		return h.s.show(w, r, http.StatusOK, "recover_sent", pageData{Title: recoveryTitle(h.kind), Message: msgUsernameEmailed,
			Support: h.s.Site.SupportLine()})
	}
	http.Redirect(w, r, recoverPage+h.kind+"/code", http.StatusSeeOther)
	return nil
}

func (h recoveryPages) codePage(w http.ResponseWriter, r *http.Request) error {
	return h.s.recoveryStage(w, r, h.kind, "recover_code", func(p pendingRecovery) pageData {
		return h.s.recoveryCodeData(h.kind, p.v.Channel)
	}, stageCode)
}

func (h recoveryPages) verifyForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	channel := ""
	if p, err := h.s.loadRecovery(r, h.kind, stageCode); err == nil {
		channel = p.v.Channel
	}
	u, err := h.s.verifyRecovery(w, r, h.kind, r.PostFormValue("code"))
	if err != nil {
		d := h.s.recoveryCodeData(h.kind, channel)
		d.Message = ""
		return h.s.refused(w, r, "recover_code", d, err)
	}
	if h.kind == recoverPassword {
		http.Redirect(w, r, recoverPage+"password/new", http.StatusSeeOther)
		return nil
	}
	return h.s.show(w, r, http.StatusOK, "recover_username", pageData{Title: "Your username", Username: u.Username})
}

func (h recoveryPages) newPasswordPage(w http.ResponseWriter, r *http.Request) error {
	return h.s.recoveryStage(w, r, recoverPassword, "recover_password", func(pendingRecovery) pageData { return h.s.newPasswordData() },
		stageNewPassword)
}

func (h recoveryPages) newPasswordForm(w http.ResponseWriter, r *http.Request) error {
	if err := step(w, r); err != nil {
		return err
	}
	f := PasswordForm{NewPassword: r.PostFormValue("new_password"), ConfirmPassword: r.PostFormValue("confirm_password")}
	if err := h.s.completePassword(w, r, f); err != nil {
		return h.s.refused(w, r, "recover_password", h.s.newPasswordData(), err)
	}
	http.Redirect(w, r, afterPasswordReset, http.StatusSeeOther)
	return nil
}

// registerRecovery adds the routes of both recoveries to mux.
func (s *Room) registerRecovery(mux *http.ServeMux) {
	h := s.Site.Handle
	for _, kind := range []string{recoverUsername, recoverPassword} {
		p, api := recoveryPages{s, kind}, recoveryAPI{s, kind}
		page := recoverPage + kind
		mux.Handle("GET "+page, h(p.identifyPage))
		mux.Handle("POST "+page, h(p.identifyForm))
		mux.Handle("GET "+page+"/method", h(p.methodPage))
		mux.Handle("POST "+page+"/send", h(p.sendForm))
		mux.Handle("GET "+page+"/code", h(p.codePage))
		mux.Handle("POST "+page+"/verify", h(p.verifyForm))
		path := web.APIPrefix + "recover/" + kind
		mux.Handle("POST "+path+"/identify", h(api.identify))
		mux.Handle("POST "+path+"/send", h(api.send))
		mux.Handle("POST "+path+"/verify", h(api.verify))
	}
	p, api := recoveryPages{s, recoverPassword}, recoveryAPI{s, recoverPassword}
	mux.Handle("GET "+recoverPage+"password/new", h(p.newPasswordPage))
	mux.Handle("POST "+recoverPage+"password/new", h(p.newPasswordForm))
	mux.Handle("POST "+web.APIPrefix+"recover/password/complete", h(api.complete))
}

// recoveryNotAvailable answers every route of recovery on a gateway
// without a directory of customer records.
func (s *Room) recoveryNotAvailable(w http.ResponseWriter, r *http.Request) error {
	return &web.Error{Status: http.StatusNotFound, Reason: policies.ReasonNotFound,
		Message: "Recovering a username or password online isn't available here. " + s.callUs()}
}
