//! Charts as SVG, drawn in Rust with `plotters`: a line over the quarters, with the figures
//! also given as a table beside it (the chart is an image; the table is what a screen reader
//! reads).

use plotters::prelude::*;

/// One series over a run of quarters: labels and values (`None` where there is none).
pub struct Series<'a> {
    pub labels: &'a [String],
    pub values: &'a [Option<f64>],
    /// The top of the value axis (values are not negative).
    pub top: f64,
}

/// The series as an SVG line chart, `width` by `height` pixels.
pub fn line_svg(series: &Series<'_>, width: u32, height: u32) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        if draw(&root, series).is_err() {
            return String::new();
        }
        if root.present().is_err() {
            return String::new();
        }
    }
    svg
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &Series<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let count = series.labels.len().max(1);
    let top = if series.top > 0.0 { series.top } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(0usize..count - 1, 0f64..top)?;
    let labels = series.labels;
    chart
        .configure_mesh()
        .x_labels(count.min(6))
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .y_labels(5)
        .light_line_style(RGBColor(235, 235, 235))
        .axis_desc_style(("sans-serif", 12))
        .draw()?;
    let ink = RGBColor(155, 28, 28);
    let points: Vec<(usize, f64)> = series
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    chart.draw_series(LineSeries::new(points.clone(), ink.stroke_width(2)))?;
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, ink.filled())))?;
    Ok(())
}
