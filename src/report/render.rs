//! Draws a [`Figure`] with plotters, as a PNG file or an SVG string.
//!
//! The legend lives in its own panel right of the plot area, so it can never cover
//! data however the curves fall. Everything is clamped to the axis ranges before it
//! reaches plotters: a NaN or an out-of-range point must not move the axes or panic.

use std::path::Path;
use std::sync::Once;

use ab_glyph::{Font, ScaleFont};
use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::figure::{Dash, Figure, Layer, Rgb, Sample, Shape};

pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 520;
const LEGEND_W: u32 = 250;
const FONT: &str = "sans-serif";

static FONTS: Once = Once::new();

/// With plotters' default features off there is no system font lookup: text fails to
/// draw unless a font is registered, so register DejaVu once per process.
fn ensure_font() {
    FONTS.call_once(|| {
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn png(fig: &Figure, path: &Path) -> Result<(), String> {
    ensure_font();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, fig, Glyphs::OneByOne)?;
    root.present().map_err(err)
}

pub fn svg(fig: &Figure) -> Result<String, String> {
    ensure_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, fig, Glyphs::Whole)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// How our own text (title, legend, notes) is drawn. plotters' bitmap text puts each
/// glyph at its advance without its left side bearing, so letters crowd and gaps open
/// ("fresh _data", "co ntrol"); on a bitmap each glyph is placed here instead. An SVG
/// viewer lays text out itself, correctly, so SVG text goes whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glyphs {
    OneByOne,
    Whole,
}

/// The horizontal layout of `text` at `size` pixels: each character with the x of its
/// glyph's left edge (pen position plus bearing and kerning), and the total advance.
fn layout(text: &str, size: f32) -> (Vec<(char, f32)>, f32) {
    let Ok(font) = ab_glyph::FontRef::try_from_slice(dejavu::sans::regular()) else {
        return (Vec::new(), 0.0);
    };
    let sf = font.as_scaled(size);
    let mut pen = 0.0f32;
    let mut prev = None;
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            pen += sf.kern(p, id);
        }
        let glyph = id.with_scale(size);
        if let Some(o) = sf.outline_glyph(glyph) {
            out.push((c, pen + o.px_bounds().min.x));
        }
        pen += sf.h_advance(id);
        prev = Some(id);
    }
    (out, pen)
}

fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    (x, y): (i32, i32),
    style: &TextStyle,
    glyphs: Glyphs,
) -> Result<(), String> {
    match glyphs {
        Glyphs::Whole => area
            .draw(&Text::new(s.to_string(), (x, y), style.clone()))
            .map_err(err),
        Glyphs::OneByOne => {
            let (placed, _) = layout(s, style.font.get_size() as f32);
            for (c, at) in placed {
                area.draw(&Text::new(
                    c.to_string(),
                    (x + at.round() as i32, y),
                    style.clone(),
                ))
                .map_err(err)?;
            }
            Ok(())
        }
    }
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Dash and gap lengths in pixels.
fn dash_px(d: Dash) -> (u32, u32) {
    match d {
        Dash::Solid => (1, 0),
        Dash::Dashed => (7, 4),
        Dash::LongDashed => (14, 6),
        Dash::Dotted => (2, 3),
    }
}

/// Height of the title band above the plot.
const TITLE_H: u32 = 30;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    glyphs: Glyphs,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let (head, body) = root.split_vertically(TITLE_H);
    let title = TextStyle::from((FONT, 18).into_font());
    let (_, width) = layout(&fig.title, 18.0);
    let left = ((WIDTH as f32 - width) / 2.0).max(4.0) as i32;
    text(&head, &fig.title, (left, 4), &title, glyphs)?;
    let (w, _) = body.dim_in_pixel();
    let (plot, side) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    let (y0, y1) = fig.y_range;
    if fig.y_log {
        chart(&plot, fig, LogAxis::new(y0, y1))?;
    } else {
        chart(&plot, fig, y0..y1)?;
    }
    legend(&side, fig, glyphs)
}

fn chart<DB, Y>(area: &DrawingArea<DB, Shift>, fig: &Figure, y: Y) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let (x0, x1) = fig.x_range;
    let (y0, y1) = fig.y_range;
    let mut c = ChartBuilder::on(area)
        .margin(8)
        .margin_right(18)
        .x_label_area_size(50)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y)
        .map_err(err)?;
    let xfmt = |v: &f64| x_tick(fig, *v);
    let yfmt = |v: &f64| tick(snap(*v, y1 - y0));
    let mut mesh = c.configure_mesh();
    mesh.x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        // Light lines at every minor tick shade the plot grey; the labelled grid is enough.
        .max_light_lines(0)
        .bold_line_style(RGBColor(220, 220, 220));
    if !fig.x_categories.is_empty() {
        mesh.x_labels(fig.x_categories.len()).disable_x_mesh();
    }
    mesh.draw().map_err(err)?;

    let inside = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let clamp = |(x, y): (f64, f64)| (x.clamp(x0, x1), y.clamp(y0, y1));
    for layer in &fig.layers {
        match layer {
            Layer::Line {
                points,
                color,
                width,
                opacity,
                dash,
            } => {
                let style = rgb(*color).mix(*opacity).stroke_width(*width);
                let pts: Vec<(f64, f64)> =
                    points.iter().copied().filter(inside).map(clamp).collect();
                if *dash == Dash::Solid {
                    c.draw_series(LineSeries::new(pts, style)).map_err(err)?;
                } else {
                    let (d, g) = dash_px(*dash);
                    c.draw_series(DashedLineSeries::new(pts, d, g, style))
                        .map_err(err)?;
                }
            }
            Layer::Band {
                x,
                lo,
                hi,
                color,
                opacity,
            } => {
                let upper = x.iter().zip(hi).map(|(&x, &y)| (x, y));
                let lower = x.iter().zip(lo).rev().map(|(&x, &y)| (x, y));
                let pts: Vec<(f64, f64)> = upper.chain(lower).filter(inside).map(clamp).collect();
                if pts.len() >= 3 {
                    let style = rgb(*color).mix(*opacity).filled();
                    c.draw_series(std::iter::once(Polygon::new(pts, style)))
                        .map_err(err)?;
                }
            }
            Layer::VLines {
                xs,
                color,
                width,
                dash,
            } => {
                let style = rgb(*color).stroke_width(*width);
                let lines = xs
                    .iter()
                    .filter(|x| x.is_finite() && **x >= x0 && **x <= x1)
                    .map(|&x| vec![(x, y0), (x, y1)]);
                stroke(&mut c, lines, style, *dash)?;
            }
            Layer::HLine { y, color, dash } => {
                if y.is_finite() && *y >= y0 && *y <= y1 {
                    let style = rgb(*color).stroke_width(1);
                    stroke(
                        &mut c,
                        std::iter::once(vec![(x0, *y), (x1, *y)]),
                        style,
                        *dash,
                    )?;
                }
            }
            Layer::Markers {
                points,
                color,
                shape,
                size,
            } => {
                let style = rgb(*color).filled();
                let s = *size as i32;
                let pts = points
                    .iter()
                    .copied()
                    .filter(inside)
                    .filter(|&(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1);
                match shape {
                    Shape::Circle => {
                        c.draw_series(pts.map(|p| Circle::new(p, s, style)))
                            .map_err(err)?;
                    }
                    Shape::DownTriangle => {
                        // The tip stops just above the point so the marker never hides it.
                        c.draw_series(pts.map(|p| {
                            EmptyElement::at(p)
                                + Polygon::new(
                                    vec![(-s, -2 * s - 3), (s, -2 * s - 3), (0, -3)],
                                    style,
                                )
                        }))
                        .map_err(err)?;
                    }
                    Shape::UpTriangle => {
                        c.draw_series(pts.map(|p| {
                            EmptyElement::at(p)
                                + Polygon::new(vec![(-s, 2 * s + 3), (s, 2 * s + 3), (0, 3)], style)
                        }))
                        .map_err(err)?;
                    }
                    Shape::Diamond => {
                        c.draw_series(pts.map(|p| {
                            EmptyElement::at(p)
                                + Polygon::new(vec![(0, -s), (s, 0), (0, s), (-s, 0)], style)
                        }))
                        .map_err(err)?;
                    }
                }
            }
            Layer::Segments {
                segments,
                color,
                width,
            } => {
                let style = rgb(*color).stroke_width(*width);
                let segs = segments
                    .iter()
                    .filter(|(a, b)| inside(a) && inside(b))
                    .map(|&(a, b)| vec![clamp(a), clamp(b)]);
                stroke(&mut c, segs, style, Dash::Solid)?;
            }
        }
    }
    Ok(())
}

/// A log axis with ticks at 1-2-5 multiples of powers of ten. Plotters' own log axis
/// starts its ticks at the first power of ten, so a range like 0.3 to 2.5 gets the
/// single label "1".
struct LogAxis {
    log: LogCoord<f64>,
    ticks: Vec<f64>,
}

impl LogAxis {
    fn new(lo: f64, hi: f64) -> Self {
        let decades = (hi / lo).log10();
        let mantissas: &[f64] = if decades <= 1.2 {
            &[1.0, 2.0, 3.0, 5.0]
        } else if decades <= 3.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let every = if decades > 8.0 {
            (decades / 6.0).ceil() as i32
        } else {
            1
        };
        let mut ticks = Vec::new();
        let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        for k in (k0..=k1).filter(|k| k.rem_euclid(every) == 0) {
            for m in mantissas {
                // Dividing keeps 0.3 exact where 3 * 10^-1 gives 0.30000000000000004.
                let v = if k < 0 {
                    m / 10f64.powi(-k)
                } else {
                    m * 10f64.powi(k)
                };
                if v >= lo && v <= hi {
                    ticks.push(v);
                }
            }
        }
        LogAxis {
            log: (lo..hi).log_scale().into(),
            ticks,
        }
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.log.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points();
        if max == 0 {
            return Vec::new();
        }
        let stride = self.ticks.len().div_ceil(max).max(1);
        self.ticks.iter().step_by(stride).copied().collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.log.range()
    }
}

/// Axis arithmetic leaves zero as 1e-17; print it as 0.
fn snap(v: f64, span: f64) -> f64 {
    if v.abs() < span.abs() * 1e-9 { 0.0 } else { v }
}

fn stroke<DB, Y>(
    c: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    paths: impl Iterator<Item = Vec<(f64, f64)>>,
    style: ShapeStyle,
    dash: Dash,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64>,
{
    if dash == Dash::Solid {
        c.draw_series(paths.map(|p| PathElement::new(p, style)))
            .map_err(err)?;
    } else {
        let (d, g) = dash_px(dash);
        c.draw_series(paths.map(|p| DashedPathElement::new(p, d, g, style)))
            .map_err(err)?;
    }
    Ok(())
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    glyphs: Glyphs,
) -> Result<(), String> {
    let font = TextStyle::from((FONT, 13).into_font());
    let grey = (FONT, 12).into_font().color(&RGBColor(90, 90, 90));
    let mut y = 24i32;
    for e in &fig.legend {
        let c = rgb(e.color);
        match e.sample {
            Sample::Line(dash, w) => {
                let style = c.stroke_width(w.max(1));
                let pts = vec![(6, y), (40, y)];
                if dash == Dash::Solid {
                    area.draw(&PathElement::new(pts, style)).map_err(err)?;
                } else {
                    let (d, g) = dash_px(dash);
                    area.draw(&DashedPathElement::new(pts, d, g, style))
                        .map_err(err)?;
                }
            }
            Sample::Band(op) => {
                area.draw(&Rectangle::new(
                    [(6, y - 6), (40, y + 6)],
                    c.mix(op.max(0.25)).filled(),
                ))
                .map_err(err)?;
            }
            Sample::Marker(shape) => {
                let s = 5;
                let style = c.filled();
                match shape {
                    Shape::Circle => area.draw(&Circle::new((23, y), s, style)),
                    Shape::DownTriangle => area.draw(&Polygon::new(
                        vec![(23 - s, y - s), (23 + s, y - s), (23, y + s)],
                        style,
                    )),
                    Shape::UpTriangle => area.draw(&Polygon::new(
                        vec![(23 - s, y + s), (23 + s, y + s), (23, y - s)],
                        style,
                    )),
                    Shape::Diamond => area.draw(&Polygon::new(
                        vec![(23, y - s), (23 + s, y), (23, y + s), (23 - s, y)],
                        style,
                    )),
                }
                .map_err(err)?;
            }
        }
        for (i, line) in wrap(&e.label, 28).iter().enumerate() {
            text(area, line, (48, y - 8 + 16 * i as i32), &font, glyphs)?;
            if i > 0 {
                y += 16;
            }
        }
        y += 24;
    }
    y += 6;
    for note in &fig.notes {
        for line in wrap(note, 34) {
            text(area, &line, (6, y - 8), &grey, glyphs)?;
            y += 16;
        }
        y += 4;
    }
    Ok(())
}

/// Greedy word wrap; a word longer than the width gets a line of its own.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn x_tick(fig: &Figure, v: f64) -> String {
    if !fig.x_categories.is_empty() {
        let i = v.round();
        return if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < fig.x_categories.len() {
            fig.x_categories[i as usize].clone()
        } else {
            String::new()
        };
    }
    let v = snap(v, fig.x_range.1 - fig.x_range.0);
    if fig.x_is_steps && v.abs() >= 1e4 {
        if v.abs() >= 1e6 {
            return format!("{}M", trim(format!("{:.2}", v / 1e6)));
        }
        return format!("{}k", trim(format!("{:.1}", v / 1e3)));
    }
    tick(v)
}

/// Three significant digits at most, no trailing zeros; scientific outside [1e-3, 1e5).
pub(crate) fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}").replace(".0e", "e");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    trim(format!("{v:.digits$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.1234), "0.123");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(1e-5), "1e-5");
        assert_eq!(tick(f64::NAN), "0");
        let mut f = Figure::new("f", "t");
        f.x_is_steps = true;
        assert_eq!(x_tick(&f, 250_000.0), "250k");
        assert_eq!(x_tick(&f, 1_500_000.0), "1.5M");
    }

    #[test]
    fn log_ticks_cover_ranges_that_miss_a_power_of_ten() {
        let a = LogAxis::new(0.3, 2.5);
        assert_eq!(a.ticks, [0.3, 0.5, 1.0, 2.0]);
        let b = LogAxis::new(1e-6, 10.0);
        assert_eq!(b.ticks.len(), 8);
        assert_eq!(snap(1e-17, 0.3), 0.0);
    }

    #[test]
    fn glyphs_keep_their_bearings_so_underscores_stay_attached() {
        let size = 13.0;
        let (placed, width) = layout("fresh_data", size);
        assert_eq!(placed.len(), 10);
        let font = ab_glyph::FontRef::try_from_slice(dejavu::sans::regular()).unwrap();
        let sf = font.as_scaled(size);
        let bounds = |c: char, x: f32| {
            let g = sf
                .glyph_id(c)
                .with_scale_and_position(size, ab_glyph::point(x, 0.0));
            sf.outline_glyph(g).unwrap().px_bounds()
        };
        let at = |c: char| placed.iter().find(|p| p.0 == c).unwrap().1;
        // The underscore starts where the h ends, as the font means it to.
        let gap = at('_') - (at('h') + bounds('h', 0.0).width());
        assert!(gap <= 0.5, "{placed:?}");
        // plotters alone puts each glyph's left edge at its pen position, without its
        // bearing: the gap before an underscore the issue saw, a pixel or more wider.
        let mut pen = 0.0;
        for c in "fresh".chars() {
            pen += sf.h_advance(sf.glyph_id(c));
        }
        let naive_gap = sf.h_advance(sf.glyph_id('h')) - bounds('h', 0.0).width();
        assert!(naive_gap > gap + 1.0, "no gap to fix: {naive_gap} {gap}");
        assert!(at('_') < pen, "{placed:?}");
        assert!(width > 50.0 && width < 80.0, "{width}");
    }

    #[test]
    fn wrap_breaks_at_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert!(wrap("", 5).is_empty());
    }
}
