package policies

// Point names a decision point: the moment in a flow at which the gateway
// asks the policies what to do. Each point is the Rego package
// portcullis.<point>, whose rule "decision" answers.
type Point string

// The decision points. docs/policies.md describes what each one is asked and
// which input fields it reads.
const (
	// PointLogin is asked when a username and password arrive, before the
	// password is checked: network signals and the per-address throttle.
	PointLogin Point = "login"
	// PointLoginPassword is asked after the password check (Attempt): count
	// or lock on a wrong password; sign in, ask for a step-up or refuse a
	// locked account on the right one.
	PointLoginPassword Point = "login_password"
	// PointSendCode is asked before a security code is sent (Code).
	PointSendCode Point = "send_code"
	// PointVerifyCode is asked when a security code is typed (Code, Attempt).
	PointVerifyCode Point = "verify_code"
	// PointEnrol is asked at each stage of creating a profile (Enrolment).
	PointEnrol Point = "enrol"
	// PointRecover is asked at each stage of a forgotten username or
	// password (Recovery).
	PointRecover Point = "recover"
	// PointSettings is asked before a security setting changes (Change,
	// Session).
	PointSettings Point = "settings"
	// PointAccess is asked for every proxied request (Request, Session,
	// Client).
	PointAccess Point = "access"
)

// Points lists every decision point, in flow order.
func Points() []Point {
	return []Point{
		PointLogin, PointLoginPassword, PointSendCode, PointVerifyCode,
		PointEnrol, PointRecover, PointSettings, PointAccess,
	}
}

// Input is the document a policy sees as input. It holds facts only:
// never a password, a code, a session ID or a full phone number. Times are
// Unix seconds. Pointer fields are omitted when nil; a point that needs one
// denies when it is missing.
type Input struct {
	// Point is the decision point asked; it selects the policy.
	Point Point `json:"point"`
	// Now is the time of the decision; Decide sets it from Config.Now when
	// zero.
	Now int64 `json:"now"`
	// Client is the network the request came from.
	Client Client `json:"client"`
	// Device is what the gateway knows about the browser.
	Device Device `json:"device"`
	// Account is the account the request is about; zero when none is
	// known.
	Account Account `json:"account"`
	// Request is the HTTP request being decided.
	Request Request `json:"request"`
	// Session is the logged-in session, nil when there is none.
	Session *Session `json:"session,omitempty"`
	// Attempt is the outcome of a secret check (login_password,
	// verify_code).
	Attempt *Attempt `json:"attempt,omitempty"`
	// Code describes a security code (send_code, verify_code).
	Code *Code `json:"code,omitempty"`
	// Change describes a settings change (settings).
	Change *Change `json:"change,omitempty"`
	// Enrolment describes a profile being created (enrol).
	Enrolment *Enrolment `json:"enrolment,omitempty"`
	// Recovery describes a forgotten username or password (recover).
	Recovery *Recovery `json:"recovery,omitempty"`
}

// Client describes the network a request came from.
type Client struct {
	// IP is the client address as the gateway determined it (after
	// trusted proxies); empty when IPUnknown.
	IP string `json:"ip"`
	// IPUnknown is true when the gateway could not tell who the client
	// is: a trusted proxy's X-Forwarded-For could not be read, or the
	// peer address did not parse. Facts are then empty and the shipped
	// policies refuse with ip_unknown, which allow_unchecked_ip does not
	// waive. Decide also sets it when IP is not empty but does not parse
	// as an address, so a caller cannot pass an unreadable address off as
	// merely unchecked.
	IPUnknown bool `json:"ip_unknown,omitempty"`
	// Facts are the anonymizer signals for IP.
	Facts IPFacts `json:"facts"`
	// AllowListed is true when IP lies in one of the policy data's
	// allow_listed_networks. Decide sets it from IP with the same policy
	// revision that decides, overwriting the caller's value.
	AllowListed bool `json:"allow_listed"`
	// RecentFailures counts failed logins, identity proofs and codes from
	// this address in the policy's window (ip_failure_window_seconds).
	RecentFailures int `json:"recent_failures"`
}

// Device describes the browser by its device cookie.
type Device struct {
	// Recognised is true when the request carries a registered device's
	// cookie for this account.
	Recognised bool `json:"recognised"`
	// RegisteredAt is when the device was registered, 0 when it is not.
	// The shipped policies treat a device registered longer ago than
	// devices.lifetime_seconds, or without a registration time, as not
	// recognised.
	RegisteredAt int64 `json:"registered_at"`
}

// Account describes the account a request is about.
type Account struct {
	// Exists is false when the username matches no profile.
	Exists bool `json:"exists"`
	// Locked is true when the profile is locked.
	Locked bool `json:"locked"`
	// ConsecutiveFailures counts wrong passwords in a row before this
	// request.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// RecentStepUpFailures counts wrong security codes, authenticator
	// codes and challenge answers for the account, over all its pending
	// step-ups, in the policy's window (step_up.failures.window_seconds),
	// before this try (verify_code).
	RecentStepUpFailures int `json:"recent_step_up_failures"`
	// ConsecutiveStepUpFailures counts step-up answers in a row that did
	// not pass, over every code, login and window, before this try
	// (verify_code): only a passed step-up, a password recovery or an
	// administrator's unlock resets it.
	ConsecutiveStepUpFailures int `json:"consecutive_step_up_failures"`
	// SecondFactors lists what the account can step up with: sms, voice,
	// totp, passkey, questions.
	SecondFactors []string `json:"second_factors"`
	// SecurityPhone is the phone that receives security codes, nil when
	// none is set.
	SecurityPhone *PhoneFacts `json:"security_phone,omitempty"`
	// EmailOnFile is true when the profile has an email address.
	EmailOnFile bool `json:"email_on_file"`
	// Products lists the routes (upstream apps) the customer record holds.
	Products []string `json:"products"`
	// UserID is the profile's ID. It is not part of the policy's input
	// document (a decision cannot depend on who the person is, only on the
	// facts above); the decision log records it as portcullis.user_id, so
	// that an administrator can list one person's decisions.
	UserID string `json:"-"`
}

// Request describes the HTTP request being decided.
type Request struct {
	// Route names the configured upstream app; empty for the gateway's own
	// pages.
	Route string `json:"route"`
	// Host is the request's host name.
	Host string `json:"host"`
	// Path is the request's (decoded) URL path.
	Path string `json:"path"`
	// PathClass is the longest sensitive prefix configured for Route that
	// Path lies under, or "" (always "" without a Route). Decide sets it;
	// see Engine.PathClass.
	PathClass string `json:"path_class"`
	// Method is the HTTP method.
	Method string `json:"method"`
}

// Session describes a logged-in session, never its ID.
type Session struct {
	// Methods lists how the person authenticated in this session:
	// password, then any step-ups (sms, voice, totp, passkey, questions).
	Methods []string `json:"methods"`
	// AuthTime is when the person last authenticated (login or step-up).
	AuthTime int64 `json:"auth_time"`
	// StepUpAt is when the person last passed a step-up, 0 if never.
	StepUpAt int64 `json:"step_up_at"`
	// LastSeen is the previous request's time.
	LastSeen int64 `json:"last_seen"`
	// Created is when the session began.
	Created int64 `json:"created"`
}

// Attempt is the outcome of a secret check the gateway made. Only the
// field for the point asked is set; use PasswordAttempt or CodeAttempt.
type Attempt struct {
	// PasswordOK is whether the password matched (login_password).
	PasswordOK *bool `json:"password_ok,omitempty"`
	// CodeOK is whether the security code matched (verify_code).
	CodeOK *bool `json:"code_ok,omitempty"`
}

// PasswordAttempt is the Attempt for login_password.
func PasswordAttempt(ok bool) *Attempt { return &Attempt{PasswordOK: &ok} }

// CodeAttempt is the Attempt for verify_code.
func CodeAttempt(ok bool) *Attempt { return &Attempt{CodeOK: &ok} }

// Code describes a security code: the one about to be sent (send_code) or
// the one being checked (verify_code). Never the code itself.
type Code struct {
	// Purpose is the flow the code serves: login, recover, settings or
	// enrol.
	Purpose string `json:"purpose"`
	// Channel is sms, voice or email. An email code goes to the profile's
	// address (Account.EmailOnFile) and Phone is then zero.
	Channel string `json:"channel"`
	// Phone is what is known about the destination number.
	Phone PhoneFacts `json:"phone"`
	// SentAt is when the current code was sent; at send_code, 0 for a first
	// send and the replaced code's time for a resend.
	SentAt int64 `json:"sent_at"`
	// Attempts counts wrong tries of the current code before this one.
	Attempts int `json:"attempts"`
	// Resends counts resends already made for this challenge.
	Resends int `json:"resends"`
	// Sends are the send counters (send_code): how many codes each counter
	// had in its current window before this one.
	Sends SendCounts `json:"sends"`
}

// SendCounts are the counters that limit how many codes are sent, against
// SMS pumping (data.portcullis.config.codes.send_limits). Before asking
// send_code, the gateway adds this send to each counter in one atomic step
// per counter, in fixed windows of Engine.SendLimitWindows, and reports
// what each counter held before it. The policy refuses when a count has
// reached its limit's max; CallingCode is judged for sms and voice only.
type SendCounts struct {
	// User counts codes sent for the account (per_user).
	User int `json:"user"`
	// Number counts codes sent to the destination (per_number): the phone
	// number, or the email address for an email code.
	Number int `json:"number"`
	// Address counts codes asked for from the client address
	// (per_address).
	Address int `json:"address"`
	// CallingCode counts codes sent to numbers of the destination's
	// country calling code, PhoneFacts.CallingCode (per_calling_code).
	CallingCode int `json:"calling_code"`
}

// PasswordFacts describe a new password without revealing it.
type PasswordFacts struct {
	// Length is the number of characters, as PasswordLength counts them.
	Length int `json:"length"`
	// Classes counts the character classes used: lower case, upper case,
	// digits, others. The shipped policy has no composition rules and
	// does not read it.
	Classes int `json:"classes"`
	// ContainsUsername is true when the password contains the username.
	ContainsUsername bool `json:"contains_username"`
	// ContainsName is true when the password contains one of the person's
	// names (a word of three or more letters of the display or last name),
	// case-insensitively.
	ContainsName bool `json:"contains_name"`
	// Common is true when the password is on the gateway's list of common
	// or breached passwords.
	Common bool `json:"common"`
	// GuessesLog10 is zxcvbn's estimate of how many guesses an attacker
	// needs, as the whole part of its base-10 logarithm (9 for 10⁹ to
	// just under 10¹⁰ guesses), with the username and names counted as
	// known to the attacker. 0 for a password that cannot be scored.
	GuessesLog10 int `json:"guesses_log10"`
}

// Change describes a security setting change (settings).
type Change struct {
	// Kind is password, username, security_phone, two_factor, device,
	// passkey or questions.
	Kind string `json:"kind"`
	// NewPassword describes the new password (kind password).
	NewPassword *PasswordFacts `json:"new_password,omitempty"`
	// UsernameAvailable is whether the new username is free (kind
	// username).
	UsernameAvailable bool `json:"username_available"`
	// Phone describes the new security phone (kind security_phone).
	Phone *PhoneFacts `json:"phone,omitempty"`
}

// Enrolment describes a profile being created (enrol).
type Enrolment struct {
	// Stage is identify, credentials or phone.
	Stage string `json:"stage"`
	// IdentityVerified is whether the identity details matched a customer
	// record (stage identify).
	IdentityVerified bool `json:"identity_verified"`
	// IdentityHasProfile is whether that customer already has a profile
	// (stage identify).
	IdentityHasProfile bool `json:"identity_has_profile"`
	// AccountStatus is the status of the account whose number was given
	// (open, paid_in_full, lease_returned, closed, cancelled), "" when the
	// identity did not match (stage identify). The policy refuses one not
	// in config.enrolment.eligible_statuses.
	AccountStatus string `json:"account_status"`
	// IdentityAttempts is the count of identity proofs for the same
	// identity (last name, last 4 of the SSN or TIN, date of birth) in the
	// current window of config.enrolment.window_seconds, this one
	// included, as the store's atomic increment returned it (stage
	// identify).
	IdentityAttempts int `json:"identity_attempts"`
	// AddressAttempts is the same count for the client address (stage
	// identify).
	AddressAttempts int `json:"address_attempts"`
	// UsernameAvailable is whether the chosen username is free (stage
	// credentials).
	UsernameAvailable bool `json:"username_available"`
	// NewPassword describes the chosen password (stage credentials).
	NewPassword *PasswordFacts `json:"new_password,omitempty"`
	// Consent is whether the person agreed to electronic delivery (stage
	// credentials).
	Consent bool `json:"consent"`
	// Phone describes the security phone (stage phone).
	Phone *PhoneFacts `json:"phone,omitempty"`
}

// Recovery describes a forgotten username or password (recover).
type Recovery struct {
	// Kind is username or password.
	Kind string `json:"kind"`
	// Stage is identify or complete.
	Stage string `json:"stage"`
	// IdentityVerified is whether the identity answers matched.
	IdentityVerified bool `json:"identity_verified"`
	// QuestionsAnswered is whether the identity answers included the
	// identity questions (last 4 of the SSN or TIN, date of birth): always
	// for a username, and for a password when the policy data's
	// recovery.password_identity_questions asks for them.
	QuestionsAnswered bool `json:"questions_answered"`
	// AccountAttempts is the count of identity proofs for the same account
	// (the username for a password, a digest of the identity for a
	// username) in the current window of config.recovery.window_seconds,
	// this one included, as the store's atomic increment returned it
	// (stage identify).
	AccountAttempts int `json:"account_attempts"`
	// AddressAttempts is the same count for the client address (stage
	// identify).
	AddressAttempts int `json:"address_attempts"`
	// VerifiedBy is the method the person passed (sms, voice, email) at
	// stage complete.
	VerifiedBy string `json:"verified_by,omitempty"`
	// NewPassword describes the new password (kind password, stage
	// complete).
	NewPassword *PasswordFacts `json:"new_password,omitempty"`
}
