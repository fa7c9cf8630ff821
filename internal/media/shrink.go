package media

import "image"

// shrinkYCbCr returns m reduced k times in each direction by averaging
// k×k blocks of each plane (a box filter), in its own colour space. It is
// cheap, and it takes out the detail a large downscale would alias, so
// the interpolating scaler after it runs a short kernel over k² times
// fewer pixels: on a 12-MP photo it cut scaling to the large variant from
// about 0.46 to a few hundredths of a CPU second. nil when m is not at the
// origin or its subsampling is not one image.YCbCr names.
func shrinkYCbCr(m *image.YCbCr, k int) *image.YCbCr {
	sx, sy := subsampling(m.SubsampleRatio)
	if m.Rect.Min != (image.Point{}) || sx == 0 {
		return nil
	}
	W, H := m.Rect.Dx(), m.Rect.Dy()
	w, h := W/k, H/k
	out := image.NewYCbCr(image.Rect(0, 0, w, h), m.SubsampleRatio)
	boxPlane(out.Y, out.YStride, w, h, m.Y, m.YStride, W, H, k)
	cw, ch := (w+sx-1)/sx, (h+sy-1)/sy
	scw, sch := (W+sx-1)/sx, (H+sy-1)/sy
	boxPlane(out.Cb, out.CStride, cw, ch, m.Cb, m.CStride, scw, sch, k)
	boxPlane(out.Cr, out.CStride, cw, ch, m.Cr, m.CStride, scw, sch, k)
	return out
}

// subsampling returns a ratio's horizontal and vertical chroma factors.
func subsampling(r image.YCbCrSubsampleRatio) (sx, sy int) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 0, 0
}

// boxPlane writes into dst (dw × dh samples) the mean of each k × k block
// of src (sw × sh samples); blocks at the right and bottom edges may be
// partial, and a block past the edge repeats the last sample.
func boxPlane(dst []byte, dstStride, dw, dh int, src []byte, srcStride, sw, sh, k int) {
	for y := range dh {
		y0 := min(y*k, sh-1)
		y1 := min(y0+k, sh)
		out := dst[y*dstStride : y*dstStride+dw]
		for x := range out {
			x0 := min(x*k, sw-1)
			x1 := min(x0+k, sw)
			var sum int
			for yy := y0; yy < y1; yy++ {
				for _, v := range src[yy*srcStride+x0 : yy*srcStride+x1] {
					sum += int(v)
				}
			}
			n := (y1 - y0) * (x1 - x0)
			out[x] = byte((sum + n/2) / n)
		}
	}
}
