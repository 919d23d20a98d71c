// Package phone normalizes phone numbers to E.164 and says what kind of line
// a number is, so that policies can refuse to send security codes to VoIP
// numbers.
//
// The line type comes from libphonenumber's number plan ("prefix"), which
// knows dedicated VoIP ranges in many countries but cannot see numbers that
// were ported or that belong to virtual services: it knows no VoIP ranges in
// the US at all, and a Google Voice number looks like any other. A
// CarrierLookup, when configured, asks a carrier-data provider instead and
// its answer overrides the prefix ("carrier"). If that lookup fails, the
// line type is "unknown", which policies refuse: the Classifier fails
// closed and never falls back to the optimistic prefix answer.
//
// Phone numbers are never logged in full; logs carry the masked form.
package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/sync/singleflight"

	"github.com/portcullis/portcullis/policies"
)

// Line types, the values of policies.PhoneFacts.LineType.
const (
	Mobile            = "mobile"
	FixedLine         = "fixed_line"
	FixedLineOrMobile = "fixed_line_or_mobile"
	VoIP              = "voip"
	TollFree          = "toll_free"
	PremiumRate       = "premium_rate"
	SharedCost        = "shared_cost"
	PersonalNumber    = "personal_number"
	Pager             = "pager"
	UAN               = "uan"
	Voicemail         = "voicemail"
	Unknown           = "unknown"
)

// Sources of a line type, the values of policies.PhoneFacts.Source.
const (
	SourcePrefix  = "prefix"  // libphonenumber's number plan
	SourceCarrier = "carrier" // the configured CarrierLookup
)

// Cache defaults, used when Config leaves them zero.
const (
	DefaultCacheSize = 10000
	DefaultCacheTTL  = 24 * time.Hour
)

const (
	// maxInputLen is far longer than any phone number however formatted;
	// longer input is refused before parsing.
	maxInputLen = 64
	// nonGeographicRegion is libphonenumber's region for global services
	// such as +800.
	nonGeographicRegion = "001"
)

// ErrInvalidNumber is wrapped by every error about the number itself (it
// does not parse, or is not a valid number for its region). Its text is
// safe to show to the person who typed the number.
var ErrInvalidNumber = errors.New("not a valid phone number")

// CarrierLookup asks a carrier-data source for the current line type of a
// number. It must be safe for concurrent use.
//
// LineType receives a valid E.164 number and returns one of the line types
// of policies.PhoneFacts (Mobile, FixedLine, VoIP, ...). Any error, including
// "number not found", means the line type is not known; the Classifier then
// reports Unknown. LineType must bound its own duration: the Classifier
// detaches it from the caller's cancellation so that concurrent callers
// asking about the same number can share one call.
type CarrierLookup interface {
	LineType(ctx context.Context, e164 string) (string, error)
}

// Config configures a Classifier.
type Config struct {
	// DefaultRegion is the ISO 3166-1 alpha-2 region assumed for numbers
	// written without a leading + and country code, e.g. "US". Required.
	DefaultRegion string
	// Carrier, when set, supplies the line type instead of the number
	// plan. Optional.
	Carrier CarrierLookup
	// CacheSize bounds each of the two caches (parsed input, carrier
	// answers): zero means DefaultCacheSize, negative disables caching.
	CacheSize int
	// CacheTTL is how long a carrier answer is reused, since numbers are
	// ported: zero means DefaultCacheTTL. Parsing results do not expire.
	CacheTTL time.Duration
	// Now is the clock for CacheTTL; nil means time.Now.
	Now func() time.Time
	// Logger receives carrier lookup failures; nil discards them.
	Logger *slog.Logger
}

// Classifier parses and classifies phone numbers. It is safe for
// concurrent use.
type Classifier struct {
	region  string
	carrier CarrierLookup
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger

	parsed   *lru.Cache[string, parsed]       // raw input → parse result
	carriers *lru.Cache[string, carrierEntry] // E.164 → carrier answer
	inflight singleflight.Group               // one carrier call per number at a time
}

type parsed struct {
	e164  string
	facts policies.PhoneFacts
	err   error
}

type carrierEntry struct {
	lineType string
	expires  time.Time
}

// New returns a Classifier, or an error if cfg is unusable.
func New(cfg Config) (*Classifier, error) {
	region := strings.ToUpper(strings.TrimSpace(cfg.DefaultRegion))
	if region == "" {
		return nil, errors.New("phone: default region is required")
	}
	if !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("phone: unknown default region %q", cfg.DefaultRegion)
	}
	if cfg.CacheTTL < 0 {
		return nil, errors.New("phone: negative cache TTL")
	}
	c := &Classifier{
		region:  region,
		carrier: cfg.Carrier,
		ttl:     cfg.CacheTTL,
		now:     cfg.Now,
		log:     cfg.Logger,
	}
	if c.ttl == 0 {
		c.ttl = DefaultCacheTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		var err error
		if c.parsed, err = lru.New[string, parsed](size); err != nil {
			return nil, fmt.Errorf("phone: %w", err)
		}
		if c.carriers, err = lru.New[string, carrierEntry](size); err != nil {
			return nil, fmt.Errorf("phone: %w", err)
		}
	}
	return c, nil
}

// Normalize returns raw in E.164 form ("+16502530000"). Numbers without a
// leading + are read in the default region. An error wraps
// ErrInvalidNumber and names the region, e.g. "phone: not a valid phone
// number for region US".
func (c *Classifier) Normalize(raw string) (string, error) {
	p := c.parse(raw)
	return p.e164, p.err
}

// Classify normalizes raw and says what is known about it: validity,
// region, country calling code, line type and the masked form. For a number
// that is not valid it returns Valid=false, LineType Unknown, CallingCode 0,
// an empty E.164 string and an error wrapping ErrInvalidNumber.
//
// Without a CarrierLookup the line type is libphonenumber's (Source
// "prefix"). With one, a number the plan types as VoIP stays VoIP (a
// number is refused when either the plan or the carrier says VoIP); for
// any other the carrier's answer is used (Source "carrier"); if
// the lookup fails the line type is Unknown, the failure is logged, and
// the error is not returned: the caller gets facts a policy will refuse,
// never the prefix guess. Carrier answers are cached for CacheTTL; failures
// are not cached.
func (c *Classifier) Classify(ctx context.Context, raw string) (policies.PhoneFacts, string, error) {
	p := c.parse(raw)
	if p.err != nil || c.carrier == nil {
		return p.facts, p.e164, p.err
	}
	if p.facts.LineType == VoIP {
		// A number the plan itself gives to VoIP stays VoIP whatever a
		// carrier says: a number is refused when either says VoIP.
		return p.facts, p.e164, nil
	}
	facts := p.facts
	facts.Source = SourceCarrier
	facts.LineType = c.carrierLineType(ctx, p.e164, facts.Masked)
	return facts, p.e164, nil
}

func (c *Classifier) carrierLineType(ctx context.Context, e164, masked string) string {
	if c.carriers != nil {
		if e, ok := c.carriers.Get(e164); ok && c.now().Before(e.expires) {
			return e.lineType
		}
	}
	// Concurrent requests for one number share a single call. The call is
	// detached from the first caller's cancellation (the lookup has its own
	// timeout) so one impatient caller cannot fail the others.
	ch := c.inflight.DoChan(e164, func() (any, error) {
		lt, err := c.carrier.LineType(context.WithoutCancel(ctx), e164)
		if err != nil {
			return Unknown, err
		}
		if !isLineType(lt) {
			return Unknown, fmt.Errorf("phone: carrier lookup returned unknown line type %q", lt)
		}
		if c.carriers != nil {
			c.carriers.Add(e164, carrierEntry{lineType: lt, expires: c.now().Add(c.ttl)})
		}
		return lt, nil
	})
	select {
	case <-ctx.Done():
		c.log.ErrorContext(ctx, "carrier lookup abandoned",
			"phone", masked, "line_type", Unknown, "error", ctx.Err())
		return Unknown
	case res := <-ch:
		if res.Err != nil {
			c.log.ErrorContext(ctx, "carrier lookup failed",
				"phone", masked, "line_type", Unknown, "error", res.Err)
			return Unknown
		}
		return res.Val.(string)
	}
}

func (c *Classifier) parse(raw string) parsed {
	raw = strings.TrimSpace(raw)
	if len(raw) > maxInputLen {
		return parsed{
			facts: policies.PhoneFacts{LineType: Unknown},
			err:   fmt.Errorf("phone: %w: too long", ErrInvalidNumber),
		}
	}
	if c.parsed != nil {
		if p, ok := c.parsed.Get(raw); ok {
			return p
		}
	}
	p := c.parseUncached(raw)
	if c.parsed != nil {
		c.parsed.Add(raw, p)
	}
	return p
}

func (c *Classifier) parseUncached(raw string) parsed {
	num, err := phonenumbers.Parse(raw, c.region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return c.invalid(raw)
	}
	// A code cannot be delivered to an extension, and dropping it would
	// silently turn two inputs into one number.
	if num.GetExtension() != "" {
		return parsed{
			facts: policies.PhoneFacts{LineType: Unknown},
			err:   fmt.Errorf("phone: %w: extensions are not supported", ErrInvalidNumber),
		}
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if region == nonGeographicRegion {
		// Global services such as +800 belong to no country.
		region = ""
	}
	return parsed{
		e164: phonenumbers.Format(num, phonenumbers.E164),
		facts: policies.PhoneFacts{
			Valid:       true,
			Region:      region,
			CallingCode: int(num.GetCountryCode()),
			LineType:    lineType(phonenumbers.GetNumberType(num)),
			Source:      SourcePrefix,
			Masked:      mask(phonenumbers.Format(num, phonenumbers.INTERNATIONAL)),
		},
	}
}

// invalid builds the answer for input that is not a valid number, naming
// the region it was judged against: the default region for national
// input, the country code's region for international input.
func (c *Classifier) invalid(raw string) parsed {
	region := c.region
	if strings.HasPrefix(raw, "+") {
		region = ""
		if num, err := phonenumbers.Parse(raw, c.region); err == nil {
			if r := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode())); r != "ZZ" && r != nonGeographicRegion {
				region = r
			}
		}
	}
	err := fmt.Errorf("phone: %w", ErrInvalidNumber)
	if region != "" {
		err = fmt.Errorf("phone: %w for region %s", ErrInvalidNumber, region)
	}
	return parsed{facts: policies.PhoneFacts{LineType: Unknown}, err: err}
}

func lineType(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.MOBILE:
		return Mobile
	case phonenumbers.FIXED_LINE:
		return FixedLine
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return FixedLineOrMobile
	case phonenumbers.VOIP:
		return VoIP
	case phonenumbers.TOLL_FREE:
		return TollFree
	case phonenumbers.PREMIUM_RATE:
		return PremiumRate
	case phonenumbers.SHARED_COST:
		return SharedCost
	case phonenumbers.PERSONAL_NUMBER:
		return PersonalNumber
	case phonenumbers.PAGER:
		return Pager
	case phonenumbers.UAN:
		return UAN
	case phonenumbers.VOICEMAIL:
		return Voicemail
	default:
		return Unknown
	}
}

func isLineType(s string) bool {
	switch s {
	case Mobile, FixedLine, FixedLineOrMobile, VoIP, TollFree, PremiumRate,
		SharedCost, PersonalNumber, Pager, UAN, Voicemail, Unknown:
		return true
	}
	return false
}

// mask hides all but the last two digits of an internationally formatted
// number, keeping the country code: "+1 650-253-0000" → "+1 ••• ••• ••00".
func mask(international string) string {
	cc, national, ok := strings.Cut(international, " ")
	if !ok {
		return "••"
	}
	hide := -2
	for _, r := range national {
		if r >= '0' && r <= '9' {
			hide++
		}
	}
	var b strings.Builder
	b.WriteString(cc)
	b.WriteByte(' ')
	for _, r := range national {
		switch {
		case r >= '0' && r <= '9' && hide > 0:
			b.WriteString("•")
			hide--
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default: // separators: spaces, hyphens
			b.WriteByte(' ')
		}
	}
	return b.String()
}
