//! A plot as plain data: what to draw, in data coordinates.
//!
//! The plot builders (`plots`) decide content and downsampling once; the renderer
//! (`render`) draws the same figure as PNG and as SVG. Keeping the two apart means
//! the expensive part (walking a million steps) happens once per plot, not per format.

/// An sRGB colour.
pub type Rgb = (u8, u8, u8);

/// The Okabe–Ito palette: distinguishable under the common colour-vision deficiencies.
pub mod okabe_ito {
    use super::Rgb;
    pub const BLACK: Rgb = (0, 0, 0);
    pub const ORANGE: Rgb = (230, 159, 0);
    pub const SKY_BLUE: Rgb = (86, 180, 233);
    pub const GREEN: Rgb = (0, 158, 115);
    pub const YELLOW: Rgb = (240, 228, 66);
    pub const BLUE: Rgb = (0, 114, 178);
    pub const VERMILLION: Rgb = (213, 94, 0);
    pub const PURPLE: Rgb = (204, 121, 167);
    /// Not part of the palette: a neutral for context (raw data, epoch lines).
    pub const GREY: Rgb = (150, 150, 150);

    /// Series colours in order; yellow comes last because it is faint on white.
    pub const SERIES: [Rgb; 7] = [BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY_BLUE, YELLOW];

    pub fn series(i: usize) -> Rgb {
        SERIES[i % SERIES.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    /// Long dashes with wide gaps: tells a second dashed kind apart without colour.
    LongDashed,
    Dotted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Circle,
    /// Points down, its tip at the point: "the loss drops here".
    DownTriangle,
    /// Points up, its tip at the point: "the loss spikes here".
    UpTriangle,
    Diamond,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Line {
        points: Vec<(f64, f64)>,
        color: Rgb,
        width: u32,
        opacity: f64,
        dash: Dash,
    },
    /// A filled area between `lo` and `hi` at each `x`.
    Band {
        x: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        color: Rgb,
        opacity: f64,
    },
    /// Full-height vertical lines.
    VLines {
        xs: Vec<f64>,
        color: Rgb,
        width: u32,
        dash: Dash,
    },
    /// A full-width horizontal line.
    HLine { y: f64, color: Rgb, dash: Dash },
    Markers {
        points: Vec<(f64, f64)>,
        color: Rgb,
        shape: Shape,
        size: u32,
    },
    /// Straight segments, e.g. error bars or the height of a drop.
    Segments {
        segments: Vec<((f64, f64), (f64, f64))>,
        color: Rgb,
        width: u32,
    },
}

/// How a legend entry's sample is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Line(Dash, u32),
    Band(f64),
    Marker(Shape),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub color: Rgb,
    pub sample: Sample,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem: `loss` gives `loss.png` and the SVG inlined in the HTML.
    pub name: String,
    pub title: String,
    /// One sentence on what the plot shows, for the Markdown and HTML.
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub y_log: bool,
    /// When set, the x axis is categorical: tick `i` is named `x_categories[i]`.
    pub x_categories: Vec<String>,
    /// Whether x ticks are step counts (printed compactly, 250k rather than 250000).
    pub x_is_steps: bool,
    pub layers: Vec<Layer>,
    pub legend: Vec<LegendEntry>,
    /// Lines printed under the legend: what is not drawn, and why.
    pub notes: Vec<String>,
}

impl Figure {
    pub fn new(name: impl Into<String>, title: impl Into<String>) -> Self {
        Figure {
            name: name.into(),
            title: title.into(),
            caption: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            y_log: false,
            x_categories: Vec::new(),
            x_is_steps: false,
            layers: Vec::new(),
            legend: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn legend(&mut self, label: impl Into<String>, color: Rgb, sample: Sample) {
        self.legend.push(LegendEntry {
            label: label.into(),
            color,
            sample,
        });
    }
}
