package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/abacusbilling/abacus/internal/metering"
)

// Setting is one leaf of Config, addressed by its dotted key.
type Setting struct {
	Key    string // e.g. "http.addr"
	Env    string // e.g. "ABACUS_HTTP_ADDR"
	Flag   string // e.g. "http-addr"
	Help   string
	Secret bool
	field  []int
}

// Settings lists every leaf setting of Config in declaration order.
func Settings() []Setting {
	var out []Setting
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Tag.Get("fileonly") == "true" { // structured: read by readFile, not a flat setting
				continue
			}
			key := prefix + f.Tag.Get("key")
			idx := append(append([]int{}, index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, key+".", idx)
				continue
			}
			out = append(out, Setting{
				Key:    key,
				Env:    "ABACUS_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key)),
				Flag:   strings.NewReplacer(".", "-", "_", "-").Replace(key),
				Help:   f.Tag.Get("help"),
				Secret: f.Tag.Get("secret") == "true",
				field:  idx,
			})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

// set parses value into the setting's field of c.
func (s Setting) set(c *Config, value string) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(s.field)
	switch v.Interface().(type) {
	case string:
		v.SetString(value)
	case []string:
		var items []string
		for _, p := range strings.Split(value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	case time.Duration:
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("must be a duration such as 30s or 5m")
		}
		v.SetInt(int64(d))
	case bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		v.SetBool(b)
	case int, int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("must be a whole number")
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// Get returns the setting's value in c as text (secrets redacted when
// redact is true).
func (s Setting) Get(c *Config, redact bool) string {
	v := reflect.ValueOf(c).Elem().FieldByIndex(s.field).Interface()
	var text string
	switch x := v.(type) {
	case []string:
		text = strings.Join(x, ",")
	default:
		text = fmt.Sprint(x)
	}
	if redact && s.Secret && text != "" {
		if strings.Contains(text, "://") {
			return Redact(text)
		}
		return "[redacted]"
	}
	return text
}

// Load folds defaults, the config file, the environment and flags into a
// validated Config. args are the flags of one subcommand; it returns the
// positional arguments left after them. Flags extra to Config may be
// registered on fs by the caller before Load parses it.
func Load(fs *flag.FlagSet, args []string, env []string) (Config, []string, error) {
	cfg := Default()
	settings := Settings()
	fromFlags := map[string]string{}
	for _, s := range settings {
		s := s
		fs.Func(s.Flag, s.Help+" (env "+s.Env+")", func(v string) error {
			fromFlags[s.Key] = v
			return nil
		})
	}
	configFile := fs.String("config", "", "configuration file (YAML or TOML; env ABACUS_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	var ps Problems
	path := *configFile
	if path == "" {
		path = envMap["ABACUS_CONFIG"]
	}
	if path != "" {
		values, meters, err := readFile(path)
		if err != nil {
			return cfg, nil, err
		}
		if meters != nil {
			var mps Problems
			cfg.Metering.Meters, mps = decodeMeters(meters, path)
			ps = append(ps, mps...)
		}
		known := map[string]bool{}
		for _, s := range settings {
			known[s.Key] = true
			if v, ok := values[s.Key]; ok {
				if err := s.set(&cfg, v); err != nil {
					ps = append(ps, Problem{Key: s.Key, Value: v, Message: err.Error() + " (in " + path + ")"})
				}
			}
		}
		for _, k := range sortedKeys(values) {
			if !known[k] {
				ps = append(ps, Problem{Key: k, Value: values[k], Message: "unknown setting in " + path + "; run `abacus config` to list the settings"})
			}
		}
	}
	for _, s := range settings {
		if v, ok := envMap[s.Env]; ok {
			if err := s.set(&cfg, v); err != nil {
				ps = append(ps, Problem{Key: s.Key, Value: v, Message: err.Error() + " (from " + s.Env + ")"})
			}
		}
		if v, ok := fromFlags[s.Key]; ok {
			if err := s.set(&cfg, v); err != nil {
				ps = append(ps, Problem{Key: s.Key, Value: v, Message: err.Error() + " (from --" + s.Flag + ")"})
			}
		}
	}
	if len(ps) > 0 {
		return cfg, nil, ps
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	return cfg, fs.Args(), nil
}

// readFile reads a YAML (.yaml, .yml) or TOML (.toml) file into flat
// dotted keys, and returns the structured metering.meters list apart
// (nil when absent).
func readFile(path string) (map[string]string, any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config file: %w", err)
	}
	var tree map[string]any
	switch strings.ToLower(filepath.Ext(path)) {
	case ".toml":
		if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&tree); err != nil {
			return nil, nil, fmt.Errorf("config file %s is not valid TOML: %w", path, err)
		}
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(data, &tree); err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
		}
	default:
		return nil, nil, fmt.Errorf("config file %s: name it .yaml, .yml or .toml so its format is known", path)
	}
	var meters any
	if m, ok := tree["metering"].(map[string]any); ok {
		if v, ok := m["meters"]; ok {
			meters = v
			if meters == nil {
				meters = []any{}
			}
			delete(m, "meters")
		}
	}
	out := map[string]string{}
	flatten("", tree, out)
	return out, meters, nil
}

// decodeMeters reads the metering.meters list of a config file, with the
// API's field names; unknown fields and wrong types are problems keyed by
// the item ("metering.meters[1]"). Meter rules are checked by Validate.
func decodeMeters(v any, path string) ([]metering.Meter, Problems) {
	items, ok := v.([]any)
	if !ok {
		if maps, ok2 := v.([]map[string]any); ok2 { // TOML arrays of tables
			for _, m := range maps {
				items = append(items, m)
			}
			ok = true
		}
	}
	if !ok {
		return nil, Problems{{Key: "metering.meters", Value: fmt.Sprint(v), Message: "must be a list of meters (in " + path + ")"}}
	}
	var out []metering.Meter
	var ps Problems
	for i, it := range items {
		key := fmt.Sprintf("metering.meters[%d]", i)
		raw, err := json.Marshal(it)
		if err != nil {
			ps = append(ps, Problem{Key: key, Message: "cannot be read: " + err.Error() + " (in " + path + ")"})
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var m metering.Meter
		if err := dec.Decode(&m); err != nil {
			ps = append(ps, Problem{Key: key, Value: string(raw), Message: "is not a meter (fields: slug, name, description, eventType, aggregation, valueProperty, groupBy, filters, eventFrom): " + err.Error() + " (in " + path + ")"})
			continue
		}
		out = append(out, m)
	}
	if out == nil {
		out = []metering.Meter{}
	}
	return out, ps
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			flatten(prefix+k+".", sub, out)
		}
	case []any:
		items := make([]string, len(x))
		for i, it := range x {
			items[i] = fmt.Sprint(it)
		}
		out[strings.TrimSuffix(prefix, ".")] = strings.Join(items, ",")
	default:
		out[strings.TrimSuffix(prefix, ".")] = fmt.Sprint(x)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Print writes the effective configuration as YAML-like "key: value"
// lines with secrets redacted; static meters as one JSON line.
func Print(w io.Writer, c *Config) {
	for _, s := range Settings() {
		fmt.Fprintf(w, "%s: %s\n", s.Key, strconv.Quote(s.Get(c, true)))
	}
	if len(c.Metering.Meters) > 0 {
		b, _ := json.Marshal(c.Metering.Meters)
		fmt.Fprintf(w, "metering.meters: %s\n", b)
	}
}
