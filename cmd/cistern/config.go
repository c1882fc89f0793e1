package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cistern-mq/cistern/drivers/s3driver"
	"github.com/cistern-mq/cistern/drivers/swiftdriver"
	"github.com/cistern-mq/cistern/notify"
	"github.com/cistern-mq/cistern/server"
)

// Config is everything cistern reads at start-up: defaults, then the
// config file (-config or CISTERN_CONFIG), then environment variables, then
// flags, each overriding the one before.
type Config struct {
	Listen   string `yaml:"listen"`    // HTTP address, Zaqar's 127.0.0.1:8888 by default
	LogLevel string `yaml:"log_level"` // debug, info, warn, error
	LogJSON  bool   `yaml:"log_json"`  // JSON lines instead of console output
	// AuthStrategy is "" or "noauth" (every request's X-Project-ID is
	// trusted, as Zaqar does without keystone) or "keystone" (tokens are
	// validated against Keystone as configured in Keystone; docs/auth.md).
	AuthStrategy string         `yaml:"auth_strategy"`
	Keystone     KeystoneConfig `yaml:"keystone"`
	// SignedURLSecret enables /v2/queues/{q}/share and signed requests.
	SignedURLSecret string `yaml:"signed_url_secret"`
	// SignedURLSecretFile holds the secret instead (trailing newline
	// dropped), so that it shows neither in ps nor in the config file.
	SignedURLSecretFile string `yaml:"signed_url_secret_file"`
	// secretInArgs: the secret came from -signed-url-secret, which ps
	// shows; start-up warns.
	secretInArgs bool
	Pools        []PoolConfig  `yaml:"pools"`
	Engine       EngineConfig  `yaml:"engine"`
	Ring         RingConfig    `yaml:"ring"`
	Limits       server.Limits `yaml:"limits"`
	// AdminListen, when set, serves the admin API (pools, flavors,
	// migrations) and the public API on a second address; keep it where
	// only operators reach.
	AdminListen string `yaml:"admin_listen"`
	// AdminPprof serves Go's profiler under /debug/pprof/ on the admin
	// listener; off by default, since the listener has no authentication.
	AdminPprof bool `yaml:"admin_pprof"`
	// PoolURIAllow lists the URI prefixes a pool added through the admin
	// API may have; empty: the URIs of the pools of this configuration
	// (an fs pool's folder with what is under it). "*" allows any.
	PoolURIAllow []string `yaml:"pool_uri_allow"`
	// HTTP bounds the connections of both listeners.
	HTTP            HTTPConfig    `yaml:"http"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StartTimeout is how long start-up keeps trying stores that answer
	// "unavailable" (default 30 s).
	StartTimeout time.Duration `yaml:"start_timeout"`
	// RequestTimeout is every request's deadline (default 10 s): a store
	// that does not answer by then makes a 503 with Retry-After.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// warnings are what parseConfig found that start-up must say (a flag
	// or variable that is ignored, pools replaced).
	warnings []string
	// checkConfig: print the merged configuration and exit (-check-config).
	checkConfig bool
	// hostname names the machine for the default node id.
	hostname func() (string, error)
	// MetricsListen is where /metrics is served besides the admin
	// listener: an address of its own, or "public" for the public
	// listener too; empty: the admin listener only.
	MetricsListen string `yaml:"metrics_listen"`
	// WebsocketListen, when set, serves Zaqar's websocket transport on a
	// listener of its own (Zaqar's default port is 9000); empty: off.
	WebsocketListen string `yaml:"websocket_listen"`
	// Etcd, when it names endpoints, is cluster mode (cluster.go,
	// docs/cluster.md): nodes on the same pools share the queues.
	Etcd EtcdConfig `yaml:"etcd"`
	// NodeID names this node in the cluster (default: host name-port).
	NodeID string `yaml:"node_id"`
	// Advertise is the URL other nodes forward requests to (default:
	// http:// and the listen address).
	Advertise string `yaml:"advertise"`
	// Cluster is what Validate resolved from Etcd, NodeID and Advertise;
	// nil: a single node.
	Cluster *ClusterConfig `yaml:"-"`
	// SubscriberAllow lists the networks (CIDRs or addresses) that webhook
	// subscribers may be on beside public addresses: loopback, private and
	// link-local ones are refused unless listed here.
	SubscriberAllow []string `yaml:"subscriber_allow"`
	// RequireConfirmation is Zaqar's require_confirmation: subscribers get
	// a confirmation notice (signed with the signed-URL secret) and only
	// confirmed subscriptions are delivered to.
	RequireConfirmation bool `yaml:"require_confirmation"`
	// SMTP is the mail server mailto: subscribers are delivered through;
	// without an address, mailto: subscribers are refused.
	SMTP SMTPConfig `yaml:"smtp"`
	// subscriberAllow is SubscriberAllow as Validate parsed it.
	subscriberAllow []netip.Prefix
}

// SMTPConfig is notify.MailOptions as the config file spells it.
type SMTPConfig struct {
	Address  string `yaml:"address"` // host:port
	From     string `yaml:"from"`    // envelope sender and default From
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Options returns the deliverer's mail options; nil without an address.
func (c SMTPConfig) Options() *notify.MailOptions {
	if c.Address == "" {
		return nil
	}
	return &notify.MailOptions{Addr: c.Address, From: c.From, User: c.User, Password: c.Password}
}

// metricsPublic is the MetricsListen that serves /metrics on the public
// listener.
const metricsPublic = "public"

// KeystoneConfig is server.KeystoneOptions as the config file spells it
// (used with auth_strategy: keystone).
type KeystoneConfig struct {
	URL                 string        `yaml:"url"` // identity v3, e.g. http://keystone:5000/v3
	Username            string        `yaml:"username"`
	Password            string        `yaml:"password"`
	UserDomain          string        `yaml:"user_domain"`
	Project             string        `yaml:"project"`
	ProjectDomain       string        `yaml:"project_domain"`
	AppCredentialID     string        `yaml:"application_credential_id"`
	AppCredentialSecret string        `yaml:"application_credential_secret"`
	AdminRole           string        `yaml:"admin_role"`
	WWWAuthenticateURI  string        `yaml:"www_authenticate_uri"`
	CacheSize           int           `yaml:"cache_size"`
	CacheTTL            time.Duration `yaml:"cache_ttl"`
	NegativeTTL         time.Duration `yaml:"negative_ttl"`
	Timeout             time.Duration `yaml:"timeout"`
}

// Options returns the server's options; the logger and clock are added by
// the caller.
func (c KeystoneConfig) Options() server.KeystoneOptions {
	return server.KeystoneOptions{URL: c.URL, Username: c.Username, Password: c.Password,
		UserDomain: c.UserDomain, Project: c.Project, ProjectDomain: c.ProjectDomain,
		AppCredentialID: c.AppCredentialID, AppCredentialSecret: c.AppCredentialSecret,
		AdminRole: c.AdminRole, WWWAuthenticateURI: c.WWWAuthenticateURI, CacheSize: c.CacheSize,
		CacheTTL: c.CacheTTL, NegativeTTL: c.NegativeTTL, Timeout: c.Timeout}
}

// HTTPConfig bounds what one client connection can hold: time to send
// the headers, time to send the whole request (body included), time kept
// idle between requests, and the connections served at once (beyond it, new
// connections wait in the kernel's accept queue).
type HTTPConfig struct {
	ReadHeaderTimeout   time.Duration `yaml:"read_header_timeout"`   // default 10s
	ReadTimeout         time.Duration `yaml:"read_timeout"`          // default 30s, headers and body
	IdleTimeout         time.Duration `yaml:"idle_timeout"`          // default 2m
	MaxConnections      int           `yaml:"max_connections"`       // public listener; default 2048, negative: no cap
	AdminMaxConnections int           `yaml:"admin_max_connections"` // admin listener; default 64, negative: no cap
}

func defaultHTTP() HTTPConfig {
	return HTTPConfig{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxConnections: 2048, AdminMaxConnections: 64}
}

// PoolConfig is one object store. The first pool is the control pool: it
// holds the registry of pools, the placement of every queue and the ring.
type PoolConfig struct {
	Name   string      `yaml:"name"`
	Kind   string      `yaml:"kind"`   // fs, swift, s3
	Path   string      `yaml:"path"`   // fs: the data directory
	Weight int64       `yaml:"weight"` // share of new queues; default 100
	Flavor string      `yaml:"flavor"` // the flavor (pool group) it belongs to
	Swift  SwiftConfig `yaml:"swift"`
	S3     S3Config    `yaml:"s3"`
	// source says where the pool came from, for -check-config.
	source string
}

// SwiftConfig is swiftdriver.Config as the config file spells it.
type SwiftConfig struct {
	AuthURL         string   `yaml:"auth_url" json:"auth_url,omitempty"`
	User            string   `yaml:"user" json:"user,omitempty"`
	Key             string   `yaml:"key" json:"key,omitempty"`
	UserDomain      string   `yaml:"user_domain" json:"user_domain,omitempty"`
	Project         string   `yaml:"project" json:"project,omitempty"`
	ProjectDomain   string   `yaml:"project_domain" json:"project_domain,omitempty"`
	Region          string   `yaml:"region" json:"region,omitempty"`
	EndpointType    string   `yaml:"endpoint_type" json:"endpoint_type,omitempty"`
	AuthVersion     int      `yaml:"auth_version" json:"auth_version,omitempty"`
	StorageURL      string   `yaml:"storage_url" json:"storage_url,omitempty"`
	AuthToken       string   `yaml:"auth_token" json:"auth_token,omitempty"`
	ContainerPrefix string   `yaml:"container_prefix" json:"container_prefix,omitempty"`
	Timeout         Duration `yaml:"timeout" json:"timeout,omitempty"`
}

func (c SwiftConfig) driver() swiftdriver.Config {
	return swiftdriver.Config{AuthURL: c.AuthURL, User: c.User, Key: c.Key, UserDomain: c.UserDomain,
		Project: c.Project, ProjectDomain: c.ProjectDomain, Region: c.Region, EndpointType: c.EndpointType,
		AuthVersion: c.AuthVersion, StorageURL: c.StorageURL, AuthToken: c.AuthToken,
		ContainerPrefix: c.ContainerPrefix, Timeout: time.Duration(c.Timeout)}
}

// S3Config is s3driver.Config as the config file spells it.
type S3Config struct {
	Endpoint     string   `yaml:"endpoint" json:"endpoint,omitempty"`
	Region       string   `yaml:"region" json:"region,omitempty"`
	Bucket       string   `yaml:"bucket" json:"bucket,omitempty"`
	AccessKey    string   `yaml:"access_key" json:"access_key,omitempty"`
	SecretKey    string   `yaml:"secret_key" json:"secret_key,omitempty"`
	PathStyle    bool     `yaml:"path_style" json:"path_style,omitempty"`
	KeyPrefix    string   `yaml:"key_prefix" json:"key_prefix,omitempty"`
	CreateBucket bool     `yaml:"create_bucket" json:"create_bucket,omitempty"`
	Timeout      Duration `yaml:"timeout" json:"timeout,omitempty"`
}

func (c S3Config) driver() s3driver.Config {
	return s3driver.Config{Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, AccessKey: c.AccessKey,
		SecretKey: c.SecretKey, PathStyle: c.PathStyle, KeyPrefix: c.KeyPrefix, CreateBucket: c.CreateBucket,
		Timeout: time.Duration(c.Timeout)}
}

// RingConfig shapes the ring; keep it fixed for the life of a deployment.
type RingConfig struct {
	Seed      uint64 `yaml:"seed"`
	PartPower uint8  `yaml:"part_power"` // default 16
}

// EngineConfig tunes the queue engine; zero values take its defaults.
type EngineConfig struct {
	BodyCacheMB      int64         `yaml:"body_cache_mb"`
	SnapshotLogs     int           `yaml:"snapshot_logs"`
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	IdleTimeout      time.Duration `yaml:"idle_timeout"`
	// Journal off writes each queue's batches as its own log objects
	// instead of through the node's journal (default on; cluster mode
	// never journals).
	Journal *bool `yaml:"journal"`
	// FoldMB folds a queue out of the journal once the bodies held for
	// it weigh this many MiB (default 4).
	FoldMB int `yaml:"fold_mb"`
	// MaxStoreRequests bounds the requests in flight to each pool's store
	// (0: 32 for Swift and S3, no bound for a local folder; negative: no
	// bound).
	MaxStoreRequests int `yaml:"max_store_requests"`
}

func defaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8888",
		LogLevel:        "info",
		Limits:          server.DefaultLimits(),
		ShutdownTimeout: 30 * time.Second,
		StartTimeout:    30 * time.Second,
		RequestTimeout:  server.DefaultRequestTimeout,
		HTTP:            defaultHTTP(),
		hostname:        os.Hostname,
	}
}

// parseConfig reads flags, environment and the config file.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("cistern", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: cistern [flags]

Cistern serves the OpenStack Zaqar v2 HTTP API and keeps every message in an
object store: a local folder (the default), OpenStack Swift or S3.

  cistern                          serve on 127.0.0.1:8888 from ./cistern-data
  cistern -config cistern.yaml     pools, limits and tuning from a file (docs/configuration.md)
  cistern -driver swift -swift-auth-url URL -swift-user U -swift-key K
                                   one pool from flags; -driver replaces the config file's pools
  cistern -check-config [-config F] print the merged configuration (secrets redacted) and exit
  cistern -etcd http://127.0.0.1:2379 -listen 10.0.0.5:8888
                                   cluster mode: nodes on the same pools share the queues (docs/cluster.md)
  cistern -version                 print the version and exit
  cistern migrate [-admin URL] [-dry-run] [-project P -queue Q] [-pool NAME]
                                   move queues to the pool the ring picks (docs/pools.md)

Precedence: defaults < config file < environment < flags.

There is no authentication yet (auth_strategy noauth): the server trusts the X-Project-ID
of every request, so anyone who reaches the listener can read and write every project's
queues. Keep it on loopback or behind a proxy that authenticates; the admin listener
(-admin-listen) has no authentication either. docs/operations.md says what to set.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), `
Environment:
  CISTERN_CONFIG, CISTERN_LISTEN, CISTERN_ADMIN_LISTEN, CISTERN_METRICS_LISTEN, CISTERN_WEBSOCKET_LISTEN, CISTERN_REQUEST_TIMEOUT,
  CISTERN_DATA, CISTERN_LOG_LEVEL, CISTERN_ETCD, CISTERN_NODE_ID, CISTERN_ADVERTISE,
  CISTERN_SIGNED_URL_SECRET, CISTERN_SIGNED_URL_SECRET_FILE, CISTERN_SUBSCRIBER_ALLOW, CISTERN_SMTP, CISTERN_AUTH_STRATEGY, and for keystone CISTERN_KEYSTONE_URL,
  CISTERN_KEYSTONE_USER, CISTERN_KEYSTONE_PASSWORD, CISTERN_KEYSTONE_PROJECT,
  CISTERN_KEYSTONE_USER_DOMAIN, CISTERN_KEYSTONE_PROJECT_DOMAIN; for the -driver flags CISTERN_SWIFT_AUTH_URL,
  CISTERN_SWIFT_USER, CISTERN_SWIFT_KEY, CISTERN_SWIFT_PROJECT, CISTERN_S3_ENDPOINT, CISTERN_S3_BUCKET,
  CISTERN_S3_REGION, CISTERN_S3_ACCESS_KEY, CISTERN_S3_SECRET_KEY.
`)
	}
	var (
		configPath    = fs.String("config", getenv("CISTERN_CONFIG"), "YAML config file")
		listen        = fs.String("listen", "", "HTTP listen address (default 127.0.0.1:8888; env CISTERN_LISTEN)")
		data          = fs.String("data", "", "data directory of the fs pool (default ./cistern-data; env CISTERN_DATA)")
		logLevel      = fs.String("log-level", "", "debug, info, warn or error (env CISTERN_LOG_LEVEL)")
		logJSON       = fs.Bool("log-json", false, "log JSON lines instead of console output")
		driver        = fs.String("driver", "", "fs, swift or s3: serve one pool named default built from the flags of that driver.\nIt REPLACES the pools of the config file (start-up warns); without it, a config file's pools are used and the driver flags and their variables are ignored")
		swiftURL      = fs.String("swift-auth-url", "", "Swift auth URL (v1 tempauth or Keystone) for -driver swift")
		swiftUser     = fs.String("swift-user", "", "Swift user (tempauth account:user) for -driver swift")
		swiftKey      = fs.String("swift-key", "", "Swift key or password for -driver swift")
		swiftProj     = fs.String("swift-project", "", "Keystone project for -driver swift")
		swiftPrefix   = fs.String("swift-container-prefix", "", "prefix of every container of -driver swift, so that several deployments share one account (env CISTERN_SWIFT_CONTAINER_PREFIX)")
		s3Endpoint    = fs.String("s3-endpoint", "", "S3 endpoint URL (empty: AWS) for -driver s3")
		s3Bucket      = fs.String("s3-bucket", "", "S3 bucket for -driver s3")
		s3Region      = fs.String("s3-region", "", "S3 region for -driver s3 (default us-east-1)")
		s3Access      = fs.String("s3-access-key", "", "S3 access key (empty: the SDK's default chain)")
		s3Secret      = fs.String("s3-secret-key", "", "S3 secret key")
		secret        = fs.String("signed-url-secret", "", "secret for pre-signed URLs (/share); shows in ps: prefer -signed-url-secret-file or env CISTERN_SIGNED_URL_SECRET")
		secretFile    = fs.String("signed-url-secret-file", "", "file holding the secret for pre-signed URLs; env CISTERN_SIGNED_URL_SECRET_FILE")
		adminListen   = fs.String("admin-listen", "", "address of the admin API (pools, flavors, migrations); off when empty; env CISTERN_ADMIN_LISTEN.\nIt has NO AUTHENTICATION: whoever reaches it can add pools and move queues; keep it on loopback or a private network")
		adminPprof    = fs.Bool("admin-pprof", false, "also serve Go's profiler under /debug/pprof/ on the admin listener")
		authStrategy  = fs.String("auth-strategy", "", "noauth (default) or keystone (docs/auth.md); env CISTERN_AUTH_STRATEGY")
		metricsListen = fs.String("metrics-listen", "", "where /metrics is served besides the admin listener: an address, or \"public\" for the public listener; env CISTERN_METRICS_LISTEN")
		wsListen      = fs.String("websocket-listen", "", "address of Zaqar's websocket transport, like 127.0.0.1:9000; off when empty; env CISTERN_WEBSOCKET_LISTEN")
		showVersion   = fs.Bool("version", false, "print the version and exit")
		checkConfig   = fs.Bool("check-config", false, "print the merged configuration (secrets redacted) and where each pool came from, then exit: 0 when valid, 1 otherwise")
		etcd          = fs.String("etcd", "", "comma-separated etcd endpoints, like http://127.0.0.1:2379: set, the node runs in cluster mode (docs/cluster.md); env CISTERN_ETCD")
		nodeID        = fs.String("node-id", "", "this node's id in the cluster (default: host name-listen port); env CISTERN_NODE_ID")
		advertise     = fs.String("advertise", "", "URL the other nodes forward requests to (default: http:// and -listen, which then needs a host); env CISTERN_ADVERTISE")
		subAllow      = fs.String("subscriber-allow", "", "comma-separated networks webhook subscribers may be on besides public addresses, like 127.0.0.0/8 (loopback, private and link-local ones are refused by default); env CISTERN_SUBSCRIBER_ALLOW")
		smtpAddr      = fs.String("smtp", "", "host:port of the SMTP server mailto: subscribers are delivered through (smtp.from sets the sender); mailto: is refused when empty; env CISTERN_SMTP")
		requireConf   = fs.Bool("require-confirmation", false, "send new subscribers a confirmation notice with a signed URL (needs the signed-URL secret) and deliver only to confirmed subscriptions")
		reqTimeout    = fs.Duration("request-timeout", 0, "deadline of every request, after which a store that does not answer makes a 503 (default 10s; env CISTERN_REQUEST_TIMEOUT)")
	)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *showVersion {
		return Config{}, errVersion
	}
	cfg := defaultConfig()
	cfg.checkConfig = *checkConfig
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return Config{}, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: %w", *configPath, err)
		}
		for i := range cfg.Pools {
			cfg.Pools[i].source = "file " + *configPath
		}
	}
	pick := func(dst *string, flagVal, env string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagVal != "" {
			*dst = flagVal
		}
	}
	pick(&cfg.Listen, *listen, "CISTERN_LISTEN")
	pick(&cfg.LogLevel, *logLevel, "CISTERN_LOG_LEVEL")
	pick(&cfg.SignedURLSecret, *secret, "CISTERN_SIGNED_URL_SECRET")
	pick(&cfg.AdminListen, *adminListen, "CISTERN_ADMIN_LISTEN")
	pick(&cfg.AuthStrategy, *authStrategy, "CISTERN_AUTH_STRATEGY")
	pick(&cfg.MetricsListen, *metricsListen, "CISTERN_METRICS_LISTEN")
	pick(&cfg.WebsocketListen, *wsListen, "CISTERN_WEBSOCKET_LISTEN")
	pick(&cfg.NodeID, *nodeID, "CISTERN_NODE_ID")
	pick(&cfg.Advertise, *advertise, "CISTERN_ADVERTISE")
	pick(&cfg.SMTP.Address, *smtpAddr, "CISTERN_SMTP")
	allow := ""
	pick(&allow, *subAllow, "CISTERN_SUBSCRIBER_ALLOW")
	if allow != "" {
		cfg.SubscriberAllow = splitEndpoints(allow)
	}
	endpoints := ""
	pick(&endpoints, *etcd, "CISTERN_ETCD")
	if endpoints != "" {
		cfg.Etcd.Endpoints = splitEndpoints(endpoints)
	}
	if v := getenv("CISTERN_REQUEST_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("CISTERN_REQUEST_TIMEOUT: %w", err)
		}
		cfg.RequestTimeout = d
	}
	if *reqTimeout != 0 {
		cfg.RequestTimeout = *reqTimeout
	}
	// what scripts/keystone.sh start prints
	ks := &cfg.Keystone
	for _, kv := range []struct {
		dst *string
		env string
	}{
		{&ks.URL, "CISTERN_KEYSTONE_URL"}, {&ks.Username, "CISTERN_KEYSTONE_USER"},
		{&ks.Password, "CISTERN_KEYSTONE_PASSWORD"}, {&ks.Project, "CISTERN_KEYSTONE_PROJECT"},
		{&ks.UserDomain, "CISTERN_KEYSTONE_USER_DOMAIN"}, {&ks.ProjectDomain, "CISTERN_KEYSTONE_PROJECT_DOMAIN"},
	} {
		pick(kv.dst, "", kv.env)
	}
	pick(&cfg.SignedURLSecretFile, *secretFile, "CISTERN_SIGNED_URL_SECRET_FILE")
	if *logJSON {
		cfg.LogJSON = true
	}
	if *adminPprof {
		cfg.AdminPprof = true
	}
	if *requireConf {
		cfg.RequireConfirmation = true
	}
	cfg.secretInArgs = *secret != ""
	if cfg.SignedURLSecretFile != "" {
		if *secret != "" || getenv("CISTERN_SIGNED_URL_SECRET") != "" {
			return Config{}, errors.New("give the signed-URL secret once: a secret file and a secret both set")
		}
		raw, err := os.ReadFile(cfg.SignedURLSecretFile)
		if err != nil {
			return Config{}, fmt.Errorf("signed-URL secret: %w", err)
		}
		cfg.SignedURLSecret = strings.TrimRight(string(raw), "\r\n")
		if cfg.SignedURLSecret == "" {
			return Config{}, fmt.Errorf("signed-URL secret file %s is empty", cfg.SignedURLSecretFile)
		}
	}

	dataDir := ""
	pick(&dataDir, *data, "CISTERN_DATA")
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.warnings = append(cfg.warnings, ignoredDriverSettings(set, getenv, *driver, len(cfg.Pools) > 0)...)
	if len(cfg.Pools) == 0 || *driver != "" {
		if len(cfg.Pools) > 0 {
			cfg.warnings = append(cfg.warnings, fmt.Sprintf("-driver %s replaces the %d pool(s) of %s: serving one pool, default, built from the flags",
				*driver, len(cfg.Pools), *configPath))
		}
		p := PoolConfig{Name: "default", Kind: *driver, source: "flags (-driver)"}
		if *driver == "" {
			p.source = "default (no config file names pools)"
		}
		if p.Kind == "" {
			p.Kind = "fs"
		}
		switch p.Kind {
		case "fs":
			p.Path = "cistern-data"
			pick(&p.Path, dataDir, "")
		case "swift":
			pick(&p.Swift.AuthURL, *swiftURL, "CISTERN_SWIFT_AUTH_URL")
			pick(&p.Swift.User, *swiftUser, "CISTERN_SWIFT_USER")
			pick(&p.Swift.Key, *swiftKey, "CISTERN_SWIFT_KEY")
			pick(&p.Swift.Project, *swiftProj, "CISTERN_SWIFT_PROJECT")
			pick(&p.Swift.ContainerPrefix, *swiftPrefix, "CISTERN_SWIFT_CONTAINER_PREFIX")
			if err := requireDriverSettings("swift", p.Swift.AuthURL, p.Swift.User, p.Swift.Key); err != nil {
				return Config{}, err
			}
		case "s3":
			p.S3.PathStyle = true
			p.S3.CreateBucket = true
			pick(&p.S3.Endpoint, *s3Endpoint, "CISTERN_S3_ENDPOINT")
			pick(&p.S3.Bucket, *s3Bucket, "CISTERN_S3_BUCKET")
			pick(&p.S3.Region, *s3Region, "CISTERN_S3_REGION")
			pick(&p.S3.AccessKey, *s3Access, "CISTERN_S3_ACCESS_KEY")
			pick(&p.S3.SecretKey, *s3Secret, "CISTERN_S3_SECRET_KEY")
			if p.S3.Bucket == "" {
				p.S3.Bucket = "cistern"
			}
			if (p.S3.AccessKey == "") != (p.S3.SecretKey == "") {
				return Config{}, errors.New("-s3-access-key / CISTERN_S3_ACCESS_KEY and -s3-secret-key / CISTERN_S3_SECRET_KEY go together with -driver s3: give both, or neither for the SDK's default credential chain")
			}
		default:
			return Config{}, fmt.Errorf("-driver %q: want fs, swift or s3", p.Kind)
		}
		cfg.Pools = []PoolConfig{p}
	} else if dataDir != "" {
		for i := range cfg.Pools {
			if cfg.Pools[i].Kind == "fs" {
				cfg.Pools[i].Path = dataDir
				break
			}
		}
	}
	return cfg, cfg.Validate()
}

// errVersion is what parseConfig answers to -version.
var errVersion = errors.New("version asked for")

// driverSettings are the flags and variables of each driver's single pool.
var driverSettings = map[string][][2]string{
	"swift": {{"swift-auth-url", "CISTERN_SWIFT_AUTH_URL"}, {"swift-user", "CISTERN_SWIFT_USER"},
		{"swift-key", "CISTERN_SWIFT_KEY"}, {"swift-project", "CISTERN_SWIFT_PROJECT"},
		{"swift-container-prefix", "CISTERN_SWIFT_CONTAINER_PREFIX"}},
	"s3": {{"s3-endpoint", "CISTERN_S3_ENDPOINT"}, {"s3-bucket", "CISTERN_S3_BUCKET"}, {"s3-region", "CISTERN_S3_REGION"},
		{"s3-access-key", "CISTERN_S3_ACCESS_KEY"}, {"s3-secret-key", "CISTERN_S3_SECRET_KEY"}},
}

// requireDriverSettings says which flags (and their variables) -driver kind
// lacks, in the order of driverSettings, rather than the driver's Go field
// names that its own validation would print.
func requireDriverSettings(kind string, values ...string) error {
	var missing []string
	for i, v := range values {
		if v == "" {
			fv := driverSettings[kind][i]
			missing = append(missing, "-"+fv[0]+" / "+fv[1])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	verb := "is"
	if len(missing) > 1 {
		verb = "are"
	}
	return fmt.Errorf("%s %s required with -driver %s", strings.Join(missing, ", "), verb, kind)
}

// ignoredDriverSettings names the driver flags and variables that are set
// but build nothing: those of another driver than -driver's, or all of
// them when the config file's pools are used (no -driver).
func ignoredDriverSettings(flagSet map[string]bool, getenv func(string) string, driver string, filePools bool) []string {
	why := "-driver is " + driver
	switch {
	case driver == "" && filePools:
		why = "the config file names pools and -driver is not given"
	case driver == "":
		why = "-driver is not given, so the one pool is fs"
	}
	var out []string
	for _, kind := range []string{"swift", "s3"} {
		if kind == driver {
			continue
		}
		for _, fv := range driverSettings[kind] {
			if flagSet[fv[0]] {
				out = append(out, fmt.Sprintf("-%s is ignored: %s", fv[0], why))
			}
			if getenv(fv[1]) != "" {
				out = append(out, fmt.Sprintf("%s is ignored: %s", fv[1], why))
			}
		}
	}
	return out
}

// Validate checks the whole configuration before anything starts.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("listen address is empty")
	}
	allow, err := notify.ParseAllow(strings.Join(c.SubscriberAllow, ","))
	if err != nil {
		return err
	}
	c.subscriberAllow = allow
	if mo := c.SMTP.Options(); mo != nil {
		if err := mo.Validate(); err != nil {
			return err
		}
	} else if c.SMTP.From != "" || c.SMTP.User != "" {
		return errors.New("smtp: from or user given without an address")
	}
	if c.RequireConfirmation && c.SignedURLSecret == "" {
		return errors.New("require_confirmation needs the signed-URL secret, which signs the confirmation URLs")
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("request_timeout %s is negative", c.RequestTimeout)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = server.DefaultRequestTimeout
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.AuthStrategy {
	case "", "noauth":
	case "keystone":
		if err := c.Keystone.Options().Validate(); err != nil {
			return fmt.Errorf("auth_strategy keystone: %w", err)
		}
	default:
		return fmt.Errorf("auth_strategy %q: want noauth or keystone", c.AuthStrategy)
	}
	if len(c.Pools) == 0 {
		return errors.New("no pools configured")
	}
	names := map[string]bool{}
	for i, p := range c.Pools {
		if p.Name == "" {
			c.Pools[i].Name = fmt.Sprintf("pool%d", i)
		}
		if p.Weight < 0 {
			return fmt.Errorf("pool %q: weight %d is negative", p.Name, p.Weight)
		}
		if p.Weight == 0 {
			c.Pools[i].Weight = 100
		}
		if names[c.Pools[i].Name] {
			return fmt.Errorf("pool name %q used twice", p.Name)
		}
		names[c.Pools[i].Name] = true
		switch p.Kind {
		case "fs":
			if p.Path == "" {
				return fmt.Errorf("pool %q: fs needs a path", p.Name)
			}
		case "swift":
			sc := p.Swift.driver()
			if err := sc.Validate(); err != nil {
				return fmt.Errorf("pool %q: swift: %w", p.Name, withConfigKeys(err, p.Swift))
			}
		case "s3":
			sc := p.S3.driver()
			if err := sc.Validate(); err != nil {
				return fmt.Errorf("pool %q: s3: %w", p.Name, withConfigKeys(err, p.S3))
			}
		default:
			return fmt.Errorf("pool %q: kind %q: want fs, swift or s3", p.Name, p.Kind)
		}
	}
	def := defaultHTTP()
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.HTTP.ReadHeaderTimeout, def.ReadHeaderTimeout}, {&c.HTTP.ReadTimeout, def.ReadTimeout}, {&c.HTTP.IdleTimeout, def.IdleTimeout}} {
		if *f.v < 0 {
			return fmt.Errorf("http: negative timeout %s", *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.HTTP.MaxConnections == 0 {
		c.HTTP.MaxConnections = def.MaxConnections
	}
	if c.HTTP.AdminMaxConnections == 0 {
		c.HTTP.AdminMaxConnections = def.AdminMaxConnections
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	hostname := c.hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	return c.resolveCluster(hostname)
}
