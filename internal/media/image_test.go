package media

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
)

func code(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Code
	}
	return ""
}

func TestDetectAndLimits(t *testing.T) {
	t.Parallel()
	jpg := jpegWithEXIF(t, marked(64, 48), 1)
	var pngBuf bytes.Buffer
	_ = png.Encode(&pngBuf, marked(30, 20))
	for _, c := range []struct {
		name string
		data []byte
		lim  Limits
		want string
	}{
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), Limits{}, CodeUnsupported},
		{"pdf", []byte("%PDF-1.7\n..."), Limits{}, CodeUnsupported},
		{"empty", nil, Limits{}, CodeUnsupported},
		{"text", []byte("hello"), Limits{}, CodeUnsupported},
		{"truncated jpeg header", jpg[:40], Limits{}, CodeCorrupt},
		{"bytes over the limit", jpg, Limits{MaxBytes: 100}, CodeTooLarge},
		{"pixels over the limit", pngBuf.Bytes(), Limits{MaxPixels: 599}, CodeTooLarge},
		{"gif frames over the limit", animated(t, 5, 8, 8), Limits{MaxFrames: 4}, CodeTooLarge},
		{"pixel bomb 20000x20000", pngBomb(20000, 20000), Limits{}, CodeTooLarge},
	} {
		_, err := ReadHeader(c.data, c.lim)
		if code(err) != c.want {
			t.Errorf("%s: ReadHeader = %v, want %s", c.name, err, c.want)
		}
	}
	// A PNG named .jpg is a PNG: names never count, only bytes.
	h, err := ReadHeader(pngBuf.Bytes(), Limits{})
	if err != nil || h.Format != PNG || h.Width != 30 || h.Height != 20 {
		t.Fatalf("PNG header = %+v, %v", h, err)
	}
	if h, err := ReadHeader(animated(t, 3, 8, 8), Limits{}); err != nil || h.Frames != 3 {
		t.Fatalf("GIF header = %+v, %v", h, err)
	}
	// A truncated body whose header is whole is refused when decoded.
	big := jpegWithEXIF(t, marked(300, 200), 1)
	cut := big[:len(big)*3/4]
	h, err = ReadHeader(cut, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(cut, h, DefaultSizes); code(err) != CodeCorrupt {
		t.Fatalf("Render of a truncated JPEG = %v, want %s", err, CodeCorrupt)
	}
}

// pngBomb is a PNG whose header claims w×h pixels, with a tiny body.
func pngBomb(w, h int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	_ = binary.Write(&b, binary.BigEndian, uint32(13))
	b.WriteString("IHDR")
	b.Write(ihdr)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte("IHDR"), ihdr...)))
	return b.Bytes()
}

func TestOrientationIsApplied(t *testing.T) {
	t.Parallel()
	// 80×40, red in the top-left; orientation 6 means "rotate 90° clockwise
	// to display": upright it is 40×80 with the red block top-right.
	data := jpegWithEXIF(t, marked(80, 40), 6)
	h, err := ReadHeader(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Orientation != 6 {
		t.Fatalf("orientation = %d, want 6", h.Orientation)
	}
	rends, err := Render(data, h, Sizes{Thumbnail: 20, Medium: 40, Large: 60})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rends {
		m, err := jpeg.Decode(bytes.NewReader(r.Data))
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		b := m.Bounds()
		if b.Dx() != r.Width || b.Dy() != r.Height || b.Dx()*2 != b.Dy() {
			t.Errorf("%s: %v, reported %d×%d, want portrait 1:2", r.Name, b, r.Width, r.Height)
		}
		red := func(x, y int) bool { r, g, _, _ := m.At(x, y).RGBA(); return r > 0xB000 && g < 0x5000 }
		if !red(b.Dx()-2, 2) || red(1, 1) || red(b.Dx()-2, b.Dy()-2) {
			t.Errorf("%s: the red corner is not top-right after orientation 6", r.Name)
		}
	}
	names := []string{}
	for _, r := range rends {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "thumbnail,medium,large,original" {
		t.Fatalf("renditions = %v", names)
	}
}

// TestMetadataIsGoneFromEveryVariant reads every rendition back with
// exiftool (an independent decoder): the input's EXIF, GPS and comments
// are seen there, and none of it in any output.
func TestMetadataIsGoneFromEveryVariant(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("exiftool is required with CI=true (apt-get install libimage-exiftool-perl)")
		}
		t.Skip("exiftool not found: apt-get install libimage-exiftool-perl (scripts/test installs it)")
	}
	dir := t.TempDir()
	// readAll runs exiftool once over every file (its start-up is the
	// cost) and returns each file's tags by name.
	readAll := func(files map[string][]byte) map[string]map[string]any {
		args := []string{"-j", "-G", "-a", "-u"}
		for name, data := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, p)
		}
		out, err := exec.Command(tool, args...).Output()
		if err != nil {
			t.Fatalf("exiftool: %v", err)
		}
		var v []map[string]any
		if err := json.Unmarshal(out, &v); err != nil || len(v) != len(files) {
			t.Fatalf("exiftool output %s: %v", out, err)
		}
		tags := map[string]map[string]any{}
		for _, f := range v {
			tags[filepath.Base(f["SourceFile"].(string))] = f
		}
		return tags
	}
	leaks := func(tags map[string]any) []string {
		var bad []string
		for k, v := range tags {
			s, _ := v.(string)
			if strings.HasPrefix(k, "EXIF:") || strings.Contains(k, "GPS") || strings.HasPrefix(k, "XMP") ||
				strings.Contains(s, "AbacusCam") || strings.Contains(s, "secret comment") {
				bad = append(bad, k)
			}
		}
		return bad
	}
	inputs := map[string][]byte{
		"in.jpg": jpegWithEXIF(t, marked(300, 200), 3),
		// Upright: the original is the upload's own compressed data with
		// the metadata segments cut out, not pixels encoded again.
		"up.jpg": jpegWithEXIF(t, marked(300, 200), 1),
		"in.png": pngWithEXIF(t, marked(300, 200), 1),
	}
	outputs := map[string][]byte{}
	for name, data := range inputs {
		for _, r := range mustRender(t, data, Sizes{Thumbnail: 50, Medium: 100, Large: 200}) {
			outputs[name+"."+r.Name] = r.Data
		}
		inputs[name] = data
	}
	all := map[string][]byte{}
	for k, v := range inputs {
		all[k] = v
	}
	for k, v := range outputs {
		all[k] = v
	}
	tags := readAll(all)
	for name := range inputs {
		if len(leaks(tags[name])) == 0 || tags[name]["EXIF:GPSLatitudeRef"] == nil {
			t.Fatalf("%s: exiftool sees no EXIF/GPS in the input, so the check below proves nothing: %v", name, tags[name])
		}
	}
	if len(outputs) != 4*len(inputs) {
		t.Fatalf("%d renditions", len(outputs))
	}
	for name := range outputs {
		if bad := leaks(tags[name]); len(bad) > 0 {
			t.Errorf("%s keeps metadata: %v", name, bad)
		}
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ w, h, side, ww, wh int }{
		{4000, 3000, 1600, 1600, 1200}, {3000, 4000, 160, 120, 160}, {100, 50, 640, 100, 50}, {10000, 1, 160, 160, 1},
	} {
		if w, h := fit(c.w, c.h, c.side); w != c.ww || h != c.wh {
			t.Errorf("fit(%d, %d, %d) = %d, %d; want %d, %d", c.w, c.h, c.side, w, h, c.ww, c.wh)
		}
	}
}

func TestAnimatedGIFKeepsItsFrames(t *testing.T) {
	t.Parallel()
	data := animated(t, 4, 40, 30)
	rends := mustRender(t, data, Sizes{Thumbnail: 10, Medium: 20, Large: 30})
	orig := rends[3]
	if orig.ContentType != "image/gif" {
		t.Fatalf("original = %s", orig.ContentType)
	}
	if h2, err := ReadHeader(orig.Data, Limits{}); err != nil || h2.Frames != 4 {
		t.Fatalf("original re-read: %+v %v", h2, err)
	}
	if m, err := png.Decode(bytes.NewReader(rends[0].Data)); err != nil || m.Bounds() != image.Rect(0, 0, 10, 8) {
		t.Fatalf("thumbnail: %v %v", m.Bounds(), err)
	}
}

// TestUprightJPEGOriginalIsTheUploadsOwnData: an upright JPEG's original
// decodes to exactly the upload's pixels (its compressed data is copied,
// not encoded again), without the EXIF and comment segments.
func TestUprightJPEGOriginalIsTheUploadsOwnData(t *testing.T) {
	t.Parallel()
	data := jpegWithEXIF(t, marked(300, 200), 1)
	orig := mustRender(t, data, Sizes{Thumbnail: 50, Medium: 100, Large: 200})[3].Data
	if bytes.Contains(orig, []byte("Exif")) || bytes.Contains(orig, []byte("secret comment")) || len(orig) >= len(data) {
		t.Fatalf("original keeps metadata (%d bytes of %d)", len(orig), len(data))
	}
	want, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jpeg.Decode(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	w, g := want.(*image.YCbCr), got.(*image.YCbCr)
	if !bytes.Equal(w.Y, g.Y) || !bytes.Equal(w.Cb, g.Cb) || !bytes.Equal(w.Cr, g.Cr) {
		t.Fatal("the original's pixels differ from the upload's")
	}
}

// mustRender reads data's header and renders it.
func mustRender(t *testing.T, data []byte, sizes Sizes) []Rendition {
	t.Helper()
	h, err := ReadHeader(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rends, err := Render(data, h, sizes)
	if err != nil {
		t.Fatal(err)
	}
	return rends
}
