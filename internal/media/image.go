package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/abacusbilling/abacus"
)

// Format is an image format detected from the content.
type Format string

// The formats uploads may have.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
)

// Codes of the problems an upload may be refused with.
const (
	CodeUnsupported = "media_type_unsupported" // not JPEG, PNG, WebP or GIF (SVG, PDF, text…)
	CodeCorrupt     = "image_corrupt"          // truncated or malformed
	CodeTooLarge    = "image_too_large"        // too many bytes, pixels or frames
)

// Detect names the format of b from its first bytes (never from a file
// name or a Content-Type header). Errors: CodeUnsupported.
func Detect(b []byte) (Format, error) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG, nil
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return PNG, nil
	case len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return GIF, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP, nil
	}
	return "", abacus.Invalid(CodeUnsupported, "the file is not a JPEG, PNG, WebP or GIF image (detected from its content: %s)", sniff(b)).
		WithField("body.file", "not a JPEG, PNG, WebP or GIF image")
}

// sniff describes unsupported content for the problem's detail.
func sniff(b []byte) string {
	head := bytes.TrimSpace(b[:min(len(b), 512)])
	switch {
	case len(b) == 0:
		return "empty"
	case bytes.Contains(bytes.ToLower(head), []byte("<svg")):
		return "SVG, a vector format that can carry scripts"
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "PDF"
	case bytes.HasPrefix(head, []byte("<")):
		return "markup"
	}
	return "unknown"
}

// Limits bound what an upload may be. Zero fields take DefaultLimits.
type Limits struct {
	MaxBytes  int64 `json:"max_bytes" doc:"largest upload in bytes"`
	MaxPixels int64 `json:"max_pixels" doc:"largest width × height"`
	MaxFrames int   `json:"max_frames" doc:"most frames of an animated GIF"`
}

// DefaultLimits are a tenant's limits until it sets its own.
var DefaultLimits = Limits{MaxBytes: 15 << 20, MaxPixels: 50_000_000, MaxFrames: 100}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = DefaultLimits.MaxFrames
	}
	return l
}

// Header is what an image's header says, read without decoding pixels.
type Header struct {
	Format Format
	// Width and Height are as stored, before the EXIF orientation.
	Width, Height int
	Frames        int // 1 unless an animated GIF
	// Orientation is the EXIF orientation (1 to 8; 1 when absent).
	Orientation int
}

// Oriented returns the width and height once the orientation is applied.
func (h Header) Oriented() (w, h2 int) {
	if h.Orientation >= 5 {
		return h.Height, h.Width
	}
	return h.Width, h.Height
}

// maxAnimationPixels bounds frames × width × height of a GIF: decoding
// keeps every frame (one byte a pixel).
const maxAnimationPixels = 200_000_000

// ReadHeader detects b's format and reads its header, refusing what is
// over lim before any pixel is decoded (a decompression bomb costs only
// its header). Errors: CodeUnsupported, CodeCorrupt, CodeTooLarge.
func ReadHeader(b []byte, lim Limits) (Header, error) {
	lim = lim.WithDefaults()
	if int64(len(b)) > lim.MaxBytes {
		return Header{}, abacus.Errorf(abacus.KindTooLarge, CodeTooLarge, "the file is %d bytes; the limit is %d", len(b), lim.MaxBytes).
			WithField("body.file", "too large")
	}
	f, err := Detect(b)
	if err != nil {
		return Header{}, err
	}
	var cfg image.Config
	switch f {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
	case PNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
	case GIF:
		cfg, err = gif.DecodeConfig(bytes.NewReader(b))
	case WebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(b))
	}
	if err != nil {
		return Header{}, corrupt(f, err)
	}
	h := Header{Format: f, Width: cfg.Width, Height: cfg.Height, Frames: 1, Orientation: 1}
	if h.Width <= 0 || h.Height <= 0 {
		return Header{}, corrupt(f, errors.New("no pixels"))
	}
	if px := int64(h.Width) * int64(h.Height); px > lim.MaxPixels {
		return Header{}, tooLarge("the image is %d × %d = %d pixels; the limit is %d", h.Width, h.Height, px, lim.MaxPixels)
	}
	switch f {
	case GIF:
		n, err := gifFrames(b)
		if err != nil {
			return Header{}, corrupt(f, err)
		}
		if n > lim.MaxFrames {
			return Header{}, tooLarge("the GIF has %d frames; the limit is %d", n, lim.MaxFrames)
		}
		if int64(n)*int64(h.Width)*int64(h.Height) > maxAnimationPixels {
			return Header{}, tooLarge("the GIF's %d frames of %d × %d pixels are over the limit of %d pixels in all", n, h.Width, h.Height, maxAnimationPixels)
		}
		h.Frames = n
	default:
		h.Orientation = orientation(f, b)
	}
	return h, nil
}

func tooLarge(format string, args ...any) error {
	return abacus.Invalid(CodeTooLarge, format, args...).WithField("body.file", "too large")
}

func corrupt(f Format, err error) error {
	return abacus.Invalid(CodeCorrupt, "the %s image cannot be read: it is truncated or corrupt (%v)", f, err).
		WithField("body.file", "truncated or corrupt image")
}

// gifFrames counts the image descriptors of a GIF by walking its blocks,
// without decoding: the frame limit is checked before decoding.
func gifFrames(b []byte) (int, error) {
	if len(b) < 13 {
		return 0, io.ErrUnexpectedEOF
	}
	p := 13
	if b[10]&0x80 != 0 {
		p += 3 << (int(b[10]&7) + 1)
	}
	skipSubBlocks := func() error {
		for {
			if p >= len(b) {
				return io.ErrUnexpectedEOF
			}
			n := int(b[p])
			p++
			if n == 0 {
				return nil
			}
			p += n
		}
	}
	frames := 0
	for {
		if p >= len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		switch b[p] {
		case 0x21: // extension: label, then sub-blocks
			p += 2
			if err := skipSubBlocks(); err != nil {
				return 0, err
			}
		case 0x2C: // image descriptor
			if p+10 > len(b) {
				return 0, io.ErrUnexpectedEOF
			}
			packed := b[p+9]
			p += 10
			if packed&0x80 != 0 {
				p += 3 << (int(packed&7) + 1)
			}
			p++ // LZW minimum code size
			if err := skipSubBlocks(); err != nil {
				return 0, err
			}
			frames++
		case 0x3B:
			if frames == 0 {
				return 0, errors.New("no frame")
			}
			return frames, nil
		default:
			return 0, fmt.Errorf("unknown block 0x%02x at byte %d", b[p], p)
		}
	}
}

// Sizes are the longest side, in pixels, of each variant.
type Sizes struct {
	Thumbnail int `json:"thumbnail"`
	Medium    int `json:"medium"`
	Large     int `json:"large"`
}

// DefaultSizes are the variants' sizes unless configured.
var DefaultSizes = Sizes{Thumbnail: 160, Medium: 640, Large: 1600}

// Variant names, smallest first; the original is the last.
const (
	Thumbnail = "thumbnail"
	Medium    = "medium"
	Large     = "large"
	Original  = "original"
)

// VariantNames lists every variant, smallest first.
var VariantNames = []string{Thumbnail, Medium, Large, Original}

// Rendition is one encoded variant.
type Rendition struct {
	Name          string
	ContentType   string
	Width, Height int
	Data          []byte
}

// Render decodes b (whose header is h) and encodes the original and the
// three variants: the orientation applied, every metadata block (EXIF
// with GPS, XMP, ICC, comments) left behind because only pixels are
// re-encoded. JPEG and lossy WebP become JPEG; PNG, lossless WebP and GIF
// variants become PNG (transparency kept); a GIF's original stays a GIF
// with all its frames, its variants show the first frame. A variant is
// never larger than the image. Errors: CodeCorrupt.
func Render(b []byte, h Header, sizes Sizes) ([]Rendition, error) {
	var src image.Image
	var anim *gif.GIF
	var err error
	switch h.Format {
	case JPEG:
		src, err = jpeg.Decode(bytes.NewReader(b))
	case PNG:
		src, err = png.Decode(bytes.NewReader(b))
	case WebP:
		src, err = webp.Decode(bytes.NewReader(b))
	case GIF:
		anim, err = gif.DecodeAll(bytes.NewReader(b))
		if err == nil && len(anim.Image) > 0 {
			src = firstFrame(anim)
		}
	}
	if err != nil {
		return nil, corrupt(h.Format, err)
	}
	if src == nil {
		return nil, corrupt(h.Format, errors.New("no frame"))
	}
	enc := encodePNG
	ct := "image/png"
	if h.Format == JPEG || h.Format == WebP && isLossyWebP(b) {
		enc, ct = encodeJPEG, "image/jpeg"
	}
	ow, oh := h.Oriented()
	out := make([]Rendition, 0, 4)
	prev := preShrink(src, ow, oh, h.Orientation, sizes.Large)
	for _, v := range []struct {
		name string
		side int
	}{{Large, sizes.Large}, {Medium, sizes.Medium}, {Thumbnail, sizes.Thumbnail}} {
		w, hh := fit(ow, oh, v.side)
		// Scale in the stored orientation (width and height swapped back
		// for a rotated image), then orient the small result.
		sw, sh := w, hh
		if h.Orientation >= 5 {
			sw, sh = hh, w
		}
		dst := image.NewRGBA(image.Rect(0, 0, sw, sh))
		scalerFor(prev.Bounds(), dst.Rect).Scale(dst, dst.Rect, prev, prev.Bounds(), draw.Src, nil)
		prev = dst
		data, err := enc(orient(dst, h.Orientation))
		if err != nil {
			return nil, fmt.Errorf("encoding the %s variant: %w", v.name, err)
		}
		out = append(out, Rendition{Name: v.name, ContentType: ct, Width: w, Height: hh, Data: data})
	}
	// Variants were made smallest last; list them smallest first.
	out[0], out[2] = out[2], out[0]
	orig := Rendition{Name: Original, ContentType: ct, Width: ow, Height: oh}
	switch {
	case anim != nil:
		orig.ContentType = "image/gif"
		anim.Config.ColorModel = nil
		var buf bytes.Buffer
		// EncodeAll writes frames, palettes, delays and the loop count:
		// comments and application blocks other than the loop are dropped.
		err = gif.EncodeAll(&buf, &gif.GIF{Image: anim.Image, Delay: anim.Delay, Disposal: anim.Disposal, LoopCount: anim.LoopCount,
			Config: image.Config{Width: anim.Config.Width, Height: anim.Config.Height}, BackgroundIndex: anim.BackgroundIndex})
		orig.Data = buf.Bytes()
	case h.Orientation == 1 && h.Format == JPEG && isYCbCrOrGray(src):
		var ok bool
		if orig.Data, ok = stripJPEG(b); !ok {
			orig.Data, err = enc(src)
		}
	case h.Orientation == 1:
		orig.Data, err = enc(src)
	default:
		orig.Data, err = enc(orient(toRGBA(src), h.Orientation))
	}
	if err != nil {
		return nil, fmt.Errorf("encoding the original: %w", err)
	}
	return append(out, orig), nil
}

// scalerFor picks the interpolation from src to dst: below a halving
// the cheap bilinear one (there is little detail to alias), else the
// bilinear kernel widened to the downscale, which averages what it skips.
func scalerFor(src, dst image.Rectangle) draw.Scaler {
	if src.Dx() < 2*dst.Dx() && src.Dy() < 2*dst.Dy() {
		return draw.ApproxBiLinear
	}
	return draw.BiLinear
}

// preShrink returns a decoded JPEG (YCbCr) box-filtered down by the
// largest whole factor that keeps it at least as large as the large
// variant (see shrinkYCbCr), else src as it is.
func preShrink(src image.Image, ow, oh, orientation, large int) image.Image {
	y, ok := src.(*image.YCbCr)
	if !ok {
		return src
	}
	w, h := fit(ow, oh, large)
	if orientation >= 5 { // scaled in the stored orientation
		w, h = h, w
	}
	k := min(y.Rect.Dx()/w, y.Rect.Dy()/h)
	if k < 2 {
		return src
	}
	if m := shrinkYCbCr(y, k); m != nil {
		return m
	}
	return src
}

// fit scales w×h to fit a side×side box, never enlarging.
func fit(w, h, side int) (int, int) {
	if side <= 0 || w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int((int64(h)*int64(side)+int64(w)/2)/int64(w)))
	}
	return max(1, int((int64(w)*int64(side)+int64(h)/2)/int64(h))), side
}

// firstFrame composes a GIF's first frame on its logical screen.
func firstFrame(g *gif.GIF) image.Image {
	f := g.Image[0]
	if f.Bounds() == image.Rect(0, 0, g.Config.Width, g.Config.Height) {
		return f
	}
	dst := image.NewRGBA(image.Rect(0, 0, g.Config.Width, g.Config.Height))
	draw.Draw(dst, f.Bounds(), f, f.Bounds().Min, draw.Over)
	return dst
}

// isLossyWebP reports a WebP whose image is VP8 (lossy), bare or in an
// extended (VP8X) file.
func isLossyWebP(b []byte) bool {
	for p := 12; p+8 <= len(b); {
		id, n := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		switch id {
		case "VP8 ":
			return true
		case "VP8L":
			return false
		}
		p += 8 + n + n&1
		if n < 0 || p < 0 {
			break
		}
	}
	return false
}

// isYCbCrOrGray tells a JPEG whose bytes browsers read as they are (not
// CMYK, which Go converts when it encodes again).
func isYCbCrOrGray(m image.Image) bool {
	switch m.(type) {
	case *image.YCbCr, *image.Gray:
		return true
	}
	return false
}

func toRGBA(src image.Image) *image.RGBA {
	if r, ok := src.(*image.RGBA); ok {
		return r
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Src)
	return dst
}

func encodeJPEG(m image.Image) ([]byte, error) {
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 85})
	return buf.Bytes(), err
}

var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

func encodePNG(m image.Image) ([]byte, error) {
	var buf bytes.Buffer
	err := pngEncoder.Encode(&buf, m)
	return buf.Bytes(), err
}
