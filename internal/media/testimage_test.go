package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// marked returns a w×h image, grey with a red block in its top-left
// corner, so orientation can be checked after rendering.
func marked(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{128, 128, 128, 255}
			if x < w/4 && y < h/4 {
				c = color.RGBA{255, 0, 0, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// exifTIFF builds TIFF data with IFD0 = {Make, Orientation, GPS IFD
// pointer} and a GPS IFD with a latitude: what a phone writes.
func exifTIFF(orientation int) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("II")
	_ = binary.Write(&b, le, uint16(42))
	_ = binary.Write(&b, le, uint32(8))
	// IFD0 at 8: 3 entries (2 + 3*12 + 4 = 42 bytes) → data at 50
	const ifd0 = 8
	makeOff := ifd0 + 2 + 3*12 + 4 // "AbacusCam\x00" (10 bytes)
	gpsOff := makeOff + 10
	entry := func(tag, typ uint16, count, value uint32) {
		_ = binary.Write(&b, le, tag)
		_ = binary.Write(&b, le, typ)
		_ = binary.Write(&b, le, count)
		_ = binary.Write(&b, le, value)
	}
	_ = binary.Write(&b, le, uint16(3))
	entry(0x010F, 2, 10, uint32(makeOff))    // Make, ASCII
	entry(0x0112, 3, 1, uint32(orientation)) // Orientation, SHORT (value in the low bytes)
	entry(0x8825, 4, 1, uint32(gpsOff))      // GPS IFD pointer
	_ = binary.Write(&b, le, uint32(0))      // no next IFD
	b.WriteString("AbacusCam\x00")           // at makeOff
	// GPS IFD: 2 entries → rationals after it
	ratOff := gpsOff + 2 + 2*12 + 4
	_ = binary.Write(&b, le, uint16(2))
	entry(0x0001, 2, 2, uint32('N'))    // GPSLatitudeRef "N"
	entry(0x0002, 5, 3, uint32(ratOff)) // GPSLatitude, 3 RATIONAL
	_ = binary.Write(&b, le, uint32(0))
	for _, v := range []uint32{52, 1, 31, 1, 12, 1} {
		_ = binary.Write(&b, le, v)
	}
	return b.Bytes()
}

// jpegWithEXIF encodes m as JPEG and inserts an APP1 EXIF segment
// (orientation and GPS) right after SOI, plus a COM segment.
func jpegWithEXIF(t testing.TB, m image.Image, orientation int) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	payload := append([]byte("Exif\x00\x00"), exifTIFF(orientation)...)
	var out bytes.Buffer
	out.Write(enc.Bytes()[:2])
	out.Write([]byte{0xFF, 0xE1})
	_ = binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
	out.Write(payload)
	com := []byte("secret comment")
	out.Write([]byte{0xFF, 0xFE})
	_ = binary.Write(&out, binary.BigEndian, uint16(len(com)+2))
	out.Write(com)
	out.Write(enc.Bytes()[2:])
	return out.Bytes()
}

// pngWithEXIF encodes m as PNG with an eXIf chunk and a tEXt chunk.
func pngWithEXIF(t testing.TB, m image.Image, orientation int) []byte {
	t.Helper()
	var enc bytes.Buffer
	if err := png.Encode(&enc, m); err != nil {
		t.Fatal(err)
	}
	b := enc.Bytes()
	chunk := func(typ string, data []byte) []byte {
		var c bytes.Buffer
		_ = binary.Write(&c, binary.BigEndian, uint32(len(data)))
		c.WriteString(typ)
		c.Write(data)
		crc := crc32png(append([]byte(typ), data...))
		_ = binary.Write(&c, binary.BigEndian, crc)
		return c.Bytes()
	}
	ihdrEnd := 8 + 8 + 13 + 4
	var out bytes.Buffer
	out.Write(b[:ihdrEnd])
	out.Write(chunk("eXIf", exifTIFF(orientation)))
	out.Write(chunk("tEXt", []byte("Comment\x00secret comment")))
	out.Write(b[ihdrEnd:])
	return out.Bytes()
}

func crc32png(b []byte) uint32 {
	var table [256]uint32
	for i := range table {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = 0xEDB88320 ^ (c >> 1)
			} else {
				c >>= 1
			}
		}
		table[i] = c
	}
	c := ^uint32(0)
	for _, x := range b {
		c = table[byte(c)^x] ^ (c >> 8)
	}
	return ^c
}

// animated returns a GIF of n frames of w×h.
func animated(t testing.TB, n, w, h int) []byte {
	t.Helper()
	g := &gif.GIF{LoopCount: 0}
	pal := color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}}
	for i := range n {
		f := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		f.SetColorIndex(i%w, 0, 2)
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
