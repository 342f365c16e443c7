package healthfailover

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// Limits of the Corefile contract.
const (
	maxTier    = 10
	maxWeight  = 255
	defaultTTL = 30
)

// config is one healthfailover block, parsed and checked.
type config struct {
	// block names the server block: its keys as CoreDNS normalises them,
	// port included. It labels metrics and logs and keys the hand-over of
	// check state on reload.
	block  string
	zones  []string
	checks []checker.Spec
	sets   []*setSpec
	fall   fall.F
	status string
	// ns are the name servers of every zone's apex, fully qualified; the
	// first is also the SOA's MNAME. Nil without `ns`.
	ns []string
	// cluster shares health with other replicas; nil without `cluster`.
	cluster *clusterConfig
	// override is the operator's override file; empty for none.
	override string
}

// setSpec is a record set as written in the Corefile.
type setSpec struct {
	name  string // fully qualified, lower case; may be a wildcard, *.NAME
	qtype uint16
	ttl   uint32
	// degradedTTL is the TTL while the set does not answer with every
	// member of its first tier healthy; nil: the ttl.
	degradedTTL *uint32
	members     []memberSpec
	onAllDown   allDownPolicy
	pos         position
}

// memberSpec is one primary/secondary/tier line.
type memberSpec struct {
	tier   int
	value  string // the record's data as dig prints it; empty for an alias
	alias  string // the aliased record name, fully qualified
	check  string
	weight int // -1 when not set
	pos    position
}

// allDownPolicy is what a record set answers when no member is healthy.
type allDownPolicy int

const (
	allDownPrimary allDownPolicy = iota
	allDownNodata
	allDownServfail
)

// position is where a statement was written, for errors found after the
// tokens that caused them have been read.
type position struct {
	file string
	line int
}

func (p position) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", p.file, p.line, fmt.Sprintf(format, args...))
}

func here(c *caddy.Controller) position { return position{file: c.File(), line: c.Line()} }

// parse reads every healthfailover block of the controller's server block.
func parse(c *caddy.Controller) (*config, error) {
	var cfg *config
	for c.Next() {
		if cfg != nil {
			return nil, c.Err("healthfailover is used twice in this server block: merge the two blocks")
		}
		cfg = &config{block: blockName(c)}
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		checkPos := map[string]position{}
		for c.NextBlock() {
			switch c.Val() {
			case "check":
				spec, err := parseCheck(c)
				if err != nil {
					return nil, err
				}
				if p, dup := checkPos[spec.Name]; dup {
					return nil, c.Errf("check %q is defined twice (first at line %d)", spec.Name, p.line)
				}
				checkPos[spec.Name] = here(c)
				cfg.checks = append(cfg.checks, spec)
			case "record":
				set, err := parseRecord(c)
				if err != nil {
					return nil, err
				}
				cfg.sets = append(cfg.sets, set)
			case "fallthrough":
				cfg.fall.SetZonesFromArgs(c.RemainingArgs())
			case "ns":
				if cfg.ns != nil {
					return nil, c.Err("ns is given twice: list every name server on one line")
				}
				ns, err := parseNS(c, c.RemainingArgs())
				if err != nil {
					return nil, err
				}
				cfg.ns = ns
			case "override":
				path, err := oneArg(c, c.RemainingArgs())
				if err != nil {
					return nil, err
				}
				if cfg.override != "" {
					return nil, c.Err("override is given twice: one file holds every override")
				}
				if root := dnsserver.GetConfig(c).Root; !filepath.IsAbs(path) && root != "" {
					path = filepath.Join(root, path)
				}
				cfg.override = path
			case "cluster":
				if cfg.cluster != nil {
					return nil, c.Err("cluster is given twice")
				}
				cc, err := parseCluster(c, c.RemainingArgs())
				if err != nil {
					return nil, err
				}
				cfg.cluster = cc
			case "status":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.ArgErr()
				}
				if _, _, err := net.SplitHostPort(args[0]); err != nil {
					return nil, c.Errf("status address %q: want HOST:PORT", args[0])
				}
				cfg.status = args[0]
			default:
				return nil, c.Errf("unknown property %q", c.Val())
			}
		}
		if err := cfg.validate(checkPos); err != nil {
			return nil, err
		}
	}
	if cfg == nil {
		return nil, c.ArgErr()
	}
	return cfg, nil
}

// openBlock reports whether an option block follows on the statement's line,
// consuming its "{". Caddy's NextBlock cannot tell an omitted block from the
// next statement once nested, so the inner blocks are read by hand.
func openBlock(c *caddy.Controller) bool {
	return c.NextArg() // RemainingArgs stopped before "{" or at the end of the line
}

// blockOptions calls fn for every option of an open block, with the controller
// on the option's line.
func blockOptions(c *caddy.Controller, fn func(name string, args []string) error) error {
	for c.Next() {
		if c.Val() == "}" {
			return nil
		}
		if c.Val() == "{" {
			return c.Err("unexpected '{'")
		}
		name, args := c.Val(), c.RemainingArgs()
		// RemainingArgs reads to the end of the line, so a block written on
		// one line, `{ host www.example.org }`, hands over its "}" too; caddy
		// has already matched it as the closing brace.
		closed := len(args) > 0 && args[len(args)-1] == "}"
		if closed {
			args = args[:len(args)-1]
		}
		if err := fn(name, args); err != nil {
			return err
		}
		if closed {
			return nil
		}
	}
	return c.EOFErr()
}

// parseCheck reads a check into a Spec and has the checker judge it: the
// checker owns every rule of what a check may be, and its error names the
// option at fault, which is mapped here to the line it was written on.
func parseCheck(c *caddy.Controller) (checker.Spec, error) {
	checkPos := here(c)
	args := c.RemainingArgs()
	if len(args) < 2 {
		return checker.Spec{}, c.Errf("check needs a name and a URL or 'calculated CHILD...'")
	}
	spec := checker.Spec{Name: args[0]}
	if args[1] == "calculated" {
		if len(args) < 3 {
			return spec, c.Errf("calculated check %q needs at least one child check", spec.Name)
		}
		spec.Kind = checker.Calculated
		spec.Children = args[2:]
	} else {
		if len(args) > 2 {
			return spec, c.Errf("check %q: unexpected %q after the URL", spec.Name, args[2])
		}
		if err := parseTarget(&spec, args[1]); err != nil {
			return spec, c.Errf("check %q: %v", spec.Name, err)
		}
	}

	// A count is positive in a Corefile: in a Spec, 0 stands for the
	// default. Its range is the checker's to judge.
	countArg := func(name string, opts []string) (int, error) {
		v, err := oneArg(c, opts)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, c.Errf("%s %q: must be a positive whole number", name, v)
		}
		return n, nil
	}
	optionPos := map[string]position{}
	var headerPos []position // one for each header, in order
	if openBlock(c) {
		err := blockOptions(c, func(name string, opts []string) error {
			if spec.Kind == checker.Calculated && name != "healthy_threshold" {
				return c.Errf("unknown property %q for calculated check %q (only healthy_threshold)", name, spec.Name)
			}
			optionPos[name] = here(c)
			var err error
			switch name {
			case "host":
				spec.Host, err = oneArg(c, opts)
			case "search":
				spec.Search, err = oneArg(c, opts)
			case "interval":
				spec.Interval, err = durationArg(c, name, opts)
			case "fast_interval":
				spec.FastInterval, err = durationArg(c, name, opts)
			case "method":
				spec.Method, err = oneArg(c, opts)
			case "header":
				if len(opts) != 2 {
					return c.Errf("header needs a NAME and a VALUE (quote a value with spaces)")
				}
				spec.Headers = append(spec.Headers, checker.Header{Name: opts[0], Value: opts[1]})
				headerPos = append(headerPos, here(c))
			case "expect":
				if spec.Expect != nil {
					return c.Errf("expect is given twice: list every status on one line")
				}
				spec.Expect, err = expectArgs(c, opts)
			case "connect_timeout":
				spec.ConnectTimeout, err = durationArg(c, name, opts)
			case "response_timeout":
				spec.ResponseTimeout, err = durationArg(c, name, opts)
			case "failure_threshold":
				spec.FailureThreshold, err = countArg(name, opts)
			case "success_threshold":
				spec.SuccessThreshold, err = countArg(name, opts)
			case "healthy_threshold":
				spec.HealthyThreshold, err = countArg(name, opts)
			case "tls_verify":
				err = noArgs(c, name, opts)
				spec.TLSVerify = true
			case "invert":
				err = noArgs(c, name, opts)
				spec.Invert = true
			case "disable":
				err = noArgs(c, name, opts)
				spec.Disable = true
			default:
				return c.Errf("unknown property %q for check %q", name, spec.Name)
			}
			return err
		})
		if err != nil {
			return spec, err
		}
	}
	// References to other checks are judged once the block is read.
	if err := spec.Validate(); err != nil {
		pos := checkPos
		var se *checker.SpecError
		if errors.As(err, &se) {
			if p, ok := optionPos[se.Field]; ok {
				pos = p
			}
			if se.Field == "header" && se.Index < len(headerPos) {
				pos = headerPos[se.Index]
			}
		}
		return spec, pos.errorf("%v", err)
	}
	return spec, nil
}

// parseTarget fills the kind, address and path of a check from its URL.
func parseTarget(spec *checker.Spec, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without url's own quoting of the URL
		}
		return fmt.Errorf("bad URL %q: %v", raw, err)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("bad URL %q: want http://HOST[:PORT][/PATH], https://…, tcp://HOST:PORT or grpc[s]://HOST:PORT[/SERVICE]", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("bad URL %q: user information and fragments are not allowed", raw)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		spec.Kind, port = checker.HTTP, orDefault(port, "80")
	case "https":
		spec.Kind, port = checker.HTTPS, orDefault(port, "443")
	case "tcp", "grpc", "grpcs":
		spec.Kind = checker.Kind(u.Scheme)
		if port == "" {
			return fmt.Errorf("bad URL %q: a %s check needs a port", raw, u.Scheme)
		}
	default:
		return fmt.Errorf("bad URL %q: scheme %q is not http, https, tcp, grpc or grpcs", raw, u.Scheme)
	}
	spec.Address = net.JoinHostPort(u.Hostname(), port)
	// The checker judges the address and the path (a gRPC service): a tcp
	// check has none, and "tcp://host:port/" writes none.
	if path := u.RequestURI(); spec.Kind == checker.HTTP || spec.Kind == checker.HTTPS || path != "/" {
		spec.Path = path
	}
	return nil
}

// expectArgs reads the statuses of expect, each CODE or LOW-HIGH; the
// checker judges their range.
func expectArgs(c *caddy.Controller, args []string) ([]checker.StatusRange, error) {
	if len(args) == 0 {
		return nil, c.ArgErr()
	}
	var out []checker.StatusRange
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		if !isRange {
			hi = lo
		}
		low, errLow := strconv.Atoi(lo)
		high, errHigh := strconv.Atoi(hi)
		if errLow != nil || errHigh != nil || strings.HasPrefix(lo, "+") || strings.HasPrefix(hi, "+") {
			return nil, c.Errf("expect %q: want a status like 200 or a range like 200-299", a)
		}
		out = append(out, checker.StatusRange{Low: low, High: high})
	}
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// recordTypes are the types a record set may have.
var recordTypes = map[string]uint16{"A": dns.TypeA, "AAAA": dns.TypeAAAA, "CNAME": dns.TypeCNAME,
	"SRV": dns.TypeSRV, "TXT": dns.TypeTXT, "MX": dns.TypeMX}

func parseRecord(c *caddy.Controller) (*setSpec, error) {
	args := c.RemainingArgs()
	if len(args) != 2 {
		return nil, c.Errf("record needs a name and a type (A, AAAA, CNAME, SRV, TXT or MX)")
	}
	set := &setSpec{name: fqdn(args[0]), ttl: defaultTTL, pos: here(c)}
	if !isDomainName(set.name) {
		return nil, c.Errf("record name %q is not a domain name", args[0])
	}
	if strings.Contains(strings.TrimPrefix(set.name, "*."), "*") {
		return nil, c.Errf("record %s: a wildcard is * as the whole leftmost label, like *.example.org", args[0])
	}
	qtype, ok := recordTypes[strings.ToUpper(args[1])]
	if !ok {
		return nil, c.Errf("record %s: type %q is not A, AAAA, CNAME, SRV, TXT or MX", args[0], args[1])
	}
	set.qtype = qtype
	if !openBlock(c) {
		return nil, c.Errf("record %s %s needs a block with at least one primary", args[0], args[1])
	}
	var degradedPos position
	err := blockOptions(c, func(name string, opts []string) error {
		switch name {
		case "ttl":
			ttl, err := intArg(c, name, opts, 0, 1<<31-1)
			set.ttl = uint32(ttl)
			return err
		case "degraded_ttl":
			ttl, err := intArg(c, name, opts, 0, 1<<31-1)
			degraded := uint32(ttl)
			set.degradedTTL, degradedPos = &degraded, here(c)
			return err
		case "on_all_down":
			v, err := oneArg(c, opts)
			if err != nil {
				return err
			}
			switch v {
			case "primary":
				set.onAllDown = allDownPrimary
			case "nodata":
				set.onAllDown = allDownNodata
			case "servfail":
				set.onAllDown = allDownServfail
			default:
				return c.Errf("on_all_down %q: want primary, nodata or servfail", v)
			}
			return nil
		case "primary", "secondary", "tier":
			m, err := parseMember(c, set, name, opts)
			if err != nil {
				return err
			}
			set.members = append(set.members, m)
			return nil
		default:
			return c.Errf("unknown property %q for record %s", name, args[0])
		}
	})
	if err != nil {
		return nil, err
	}
	if len(set.members) == 0 {
		return nil, set.pos.errorf("record %s %s has no member: add a primary", args[0], args[1])
	}
	// A shorter TTL brings clients back sooner after the failback; a
	// longer one would keep them on the secondary longer.
	if d := set.degradedTTL; d != nil && *d > set.ttl {
		return nil, degradedPos.errorf("record %s: degraded_ttl %d is longer than the ttl %d", args[0], *d, set.ttl)
	}
	return set, nil
}

// parseMember reads `primary VALUE [check NAME] [weight N]`, the same with
// secondary, or `tier N VALUE …`; VALUE may be `alias NAME`.
func parseMember(c *caddy.Controller, set *setSpec, role string, args []string) (memberSpec, error) {
	m := memberSpec{weight: -1, pos: here(c)}
	switch role {
	case "primary":
		m.tier = 1
	case "secondary":
		m.tier = 2
	case "tier":
		if len(args) == 0 {
			return m, c.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > maxTier {
			return m, c.Errf("tier %q: want a number in 1-%d", args[0], maxTier)
		}
		m.tier, args = n, args[1:]
	}
	if len(args) == 0 {
		return m, c.Errf("%s needs a value", role)
	}
	if args[0] == "alias" {
		if len(args) < 2 {
			return m, c.Errf("%s alias needs a record name", role)
		}
		m.alias, args = fqdn(args[1]), args[2:]
	} else {
		n := min(valueWords(set.qtype), len(args))
		written := strings.Join(args[:n], " ")
		v, err := memberValue(set.qtype, written)
		if err != nil {
			return m, c.Errf("%s %s: %v", role, written, err)
		}
		m.value, args = v, args[n:]
		// An unquoted TXT value would be read as its first word and options.
		if set.qtype == dns.TypeTXT && len(args) > 0 && args[0] != "check" && args[0] != "weight" {
			i := slices.IndexFunc(args, func(w string) bool { return w == "check" || w == "weight" })
			if i < 0 {
				i = len(args)
			}
			return m, c.Errf("%s %s %s: a TXT value is one quoted string", role, written, strings.Join(args[:i], " "))
		}
	}
	for len(args) > 0 {
		if len(args) < 2 {
			return m, c.Errf("%s: %q needs a value", role, args[0])
		}
		switch args[0] {
		case "check":
			if m.check != "" {
				return m, c.Errf("%s: check given twice", role)
			}
			m.check = args[1]
		case "weight":
			if m.weight >= 0 {
				return m, c.Errf("%s: weight given twice", role)
			}
			w, err := strconv.Atoi(args[1])
			if err != nil || w < 0 || w > maxWeight {
				return m, c.Errf("weight %q: want a number in 0-%d", args[1], maxWeight)
			}
			m.weight = w
		default:
			return m, c.Errf("%s: unknown option %q (want check NAME or weight N)", role, args[0])
		}
		args = args[2:]
	}
	return m, nil
}

// valueWords is how many words a member's value has: SRV's PRIORITY
// WEIGHT PORT TARGET, MX's PREFERENCE HOST, one for the other types (a
// TXT string is one word however many spaces it holds: it is quoted).
func valueWords(qtype uint16) int {
	switch qtype {
	case dns.TypeSRV:
		return 4
	case dns.TypeMX:
		return 2
	}
	return 1
}

// memberValue checks that a value suits the record type and returns it in
// its canonical form: the record's data as dig prints it. v is the value's
// words joined by a space; for TXT, the string without its quotes.
func memberValue(qtype uint16, v string) (string, error) {
	switch qtype {
	case dns.TypeSRV, dns.TypeMX, dns.TypeTXT:
		rr, err := valueRR(qtype, v)
		if err != nil {
			return "", err
		}
		return rrData(rr), nil
	case dns.TypeA:
		ip := net.ParseIP(v)
		if ip == nil || ip.To4() == nil || strings.Contains(v, ":") {
			return "", fmt.Errorf("not an IPv4 address")
		}
		return ip.To4().String(), nil
	case dns.TypeAAAA:
		ip := net.ParseIP(v)
		if ip == nil || !strings.Contains(v, ":") {
			return "", fmt.Errorf("not an IPv6 address")
		}
		return ip.String(), nil
	default:
		if net.ParseIP(v) != nil {
			return "", fmt.Errorf("a CNAME points to a name, not an address")
		}
		name := fqdn(v)
		if !isDomainName(name) {
			return "", fmt.Errorf("not a domain name")
		}
		return name, nil
	}
}

// valueRR makes an RR, with an empty header, of an SRV, MX or TXT value.
func valueRR(qtype uint16, v string) (dns.RR, error) {
	words := strings.Fields(v)
	switch qtype {
	case dns.TypeTXT:
		if len(v) > 255 {
			return nil, fmt.Errorf("a TXT string is at most 255 bytes, this one has %d", len(v))
		}
		return &dns.TXT{Txt: []string{v}}, nil
	case dns.TypeMX:
		const want = "want PREFERENCE HOST, like 10 mail.example.org"
		if len(words) != 2 {
			return nil, errors.New(want)
		}
		pref, err := strconv.ParseUint(words[0], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s (preference %q is not a number in 0-65535)", want, words[0])
		}
		host, err := hostName(words[1])
		if err != nil {
			return nil, fmt.Errorf("%s (host %s)", want, err)
		}
		return &dns.MX{Preference: uint16(pref), Mx: host}, nil
	}
	const want = "want PRIORITY WEIGHT PORT TARGET, like 10 5 443 www.example.org"
	if len(words) != 4 {
		return nil, errors.New(want)
	}
	var n [3]uint16
	for i, field := range []string{"priority", "weight", "port"} {
		u, err := strconv.ParseUint(words[i], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s (%s %q is not a number in 0-65535)", want, field, words[i])
		}
		n[i] = uint16(u)
	}
	target, err := hostName(words[3])
	if err != nil {
		return nil, fmt.Errorf("%s (target %s)", want, err)
	}
	return &dns.SRV{Priority: n[0], Weight: n[1], Port: n[2], Target: target}, nil
}

// hostName is the target of an SRV or MX record: a name, "." included
// (no service), never an address.
func hostName(v string) (string, error) {
	if net.ParseIP(v) != nil {
		return "", fmt.Errorf("%s is an address, not a name", v)
	}
	name := fqdn(v)
	if !isDomainName(name) || strings.Contains(name, "*") {
		return "", fmt.Errorf("%q is not a domain name", v)
	}
	return name, nil
}

// parseNS reads the names of `ns NAME...`.
func parseNS(c *caddy.Controller, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, c.Err("ns needs at least one name server name")
	}
	var names []string
	for _, a := range args {
		if net.ParseIP(a) != nil {
			return nil, c.Errf("ns %s: an NS record names a host, not an address", a)
		}
		name := fqdn(a)
		if !isDomainName(name) {
			return nil, c.Errf("ns %q is not a domain name", a)
		}
		if slices.Contains(names, name) {
			return nil, c.Errf("ns %s is listed twice", name)
		}
		names = append(names, name)
	}
	return names, nil
}

func fqdn(s string) string { return strings.ToLower(dns.Fqdn(s)) }

// isDomainName accepts the names a zone file writes without escapes. A
// name with a quote, a parenthesis, a semicolon, a backslash, an @, a
// space or an unprintable byte would be stored as written but asked and
// printed escaped, so it could never match: it is refused.
func isDomainName(name string) bool {
	if _, ok := dns.IsDomainName(name); !ok {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c > '~' || strings.IndexByte(`"'();@\$`, c) >= 0 {
			return false
		}
	}
	return true
}

func oneArg(c *caddy.Controller, args []string) (string, error) {
	if len(args) != 1 {
		return "", c.ArgErr()
	}
	return args[0], nil
}

func noArgs(c *caddy.Controller, name string, args []string) error {
	if len(args) != 0 {
		return c.Errf("%s takes no value", name)
	}
	return nil
}

func durationArg(c *caddy.Controller, name string, args []string) (time.Duration, error) {
	v, err := oneArg(c, args)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, c.Errf("%s %q: not a duration (like 10s or 500ms)", name, v)
	}
	if d <= 0 {
		return 0, c.Errf("%s %q: must be positive", name, v)
	}
	return d, nil
}

func intArg(c *caddy.Controller, name string, args []string, lo, hi int) (int, error) {
	v, err := oneArg(c, args)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, c.Errf("%s %q: want a number in %d-%d", name, v, lo, hi)
	}
	return n, nil
}
