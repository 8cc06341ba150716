// Small SVG chart renderers: horizontal bars, monthly columns and grouped percentage bars.
//
// Each draws into a container element, replacing what was there. Sizes are in viewBox units
// (the SVG scales to the container's width); colours come from CSS classes in app.css, since
// the page's Content-Security-Policy allows no inline style.

export const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children (elements or strings). */
export function svg(name, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) element.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

function title(text) {
  return svg("title", {}, text);
}

function frame(container, width, height, ariaLabel) {
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": ariaLabel,
    preserveAspectRatio: "xMidYMin meet",
  });
  container.replaceChildren(root);
  return root;
}

function empty(container, text) {
  const p = document.createElement("p");
  p.className = "chart-empty";
  p.textContent = text;
  container.replaceChildren(p);
}

/** The widest of `texts` drawn with `className` in `root`, in viewBox units. */
function widest(root, texts, className) {
  let width = 0;
  for (const text of texts) {
    const probe = svg("text", { x: 0, y: 0, class: className }, text);
    root.append(probe);
    // getComputedTextLength is 0 while the chart is not laid out: estimate then
    width = Math.max(width, probe.getComputedTextLength() || text.length * 13);
    probe.remove();
  }
  return width;
}

/** A round upper bound for an axis: 7 → 8, 23 → 25, 140 → 150. */
export function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

/**
 * Horizontal bars: items are {key, label, value}; `valueText(item)` writes the figure at the
 * bar's end, `titleText(item)` the hover text.
 */
export function barChart(
  container,
  items,
  { ariaLabel, valueText, titleText, emptyText, width = 560 },
) {
  if (!items.length || items.every((item) => !item.value)) {
    empty(container, emptyText);
    return;
  }
  const rowHeight = 30;
  const height = items.length * rowHeight + 8;
  const max = Math.max(...items.map((item) => item.value));
  const root = frame(container, width, height, ariaLabel);
  const labelWidth = Math.min(widest(root, items.map((item) => item.label), "bar-label") + 4, width / 3);
  const barLeft = labelWidth + 8;
  const barSpan = width - barLeft - 120;
  items.forEach((item, index) => {
    const y = 4 + index * rowHeight;
    const length = max ? (item.value / max) * barSpan : 0;
    root.append(
      svg(
        "g",
        { class: `bar-row series-${index % 6}`, "data-key": item.key, "data-value": item.value },
        title(titleText(item)),
        svg("text", { x: labelWidth, y: y + 19, class: "bar-label", "text-anchor": "end" }, item.label),
        svg("rect", { x: barLeft, y: y + 5, width: Math.max(length, 1), height: 20, rx: 3, class: "bar" }),
        svg("text", { x: barLeft + length + 6, y: y + 19, class: "bar-value" }, valueText(item)),
      ),
    );
  });
}

/**
 * Columns per month: points are {month, value}; `monthLabel(month, short)` names a month.
 */
export function columnChart(
  container,
  points,
  { ariaLabel, valueText, titleText, monthLabel, emptyText, width = 560 },
) {
  if (!points.length || points.every((point) => !point.value)) {
    empty(container, emptyText);
    return;
  }
  const height = 250;
  const left = 44;
  const right = 12;
  const top = 22;
  const bottom = 40;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const max = niceMax(Math.max(...points.map((point) => point.value)));
  const root = frame(container, width, height, ariaLabel);

  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - fraction);
    root.append(
      svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: left - 6, y: y + 4, class: "axis-label", "text-anchor": "end" }, valueText(max * fraction)),
    );
  }

  const slot = plotWidth / points.length;
  const barWidth = Math.min(36, slot * 0.7);
  const labelEvery = Math.ceil(points.length / 12);
  points.forEach((point, index) => {
    const x = left + slot * index + (slot - barWidth) / 2;
    const barHeight = (point.value / max) * plotHeight;
    const y = top + plotHeight - barHeight;
    const [, monthNo] = point.month.split("-");
    const group = svg(
      "g",
      { class: "column series-0", "data-month": point.month, "data-value": point.value },
      title(titleText(point)),
      svg("rect", { x, y, width: barWidth, height: Math.max(barHeight, point.value ? 1 : 0), rx: 2, class: "bar" }),
    );
    if (point.value) {
      group.append(
        svg("text", { x: x + barWidth / 2, y: y - 5, class: "bar-value", "text-anchor": "middle" }, valueText(point.value)),
      );
    }
    if (index % labelEvery === 0) {
      const cx = x + barWidth / 2;
      group.append(
        svg("text", { x: cx, y: height - bottom + 16, class: "axis-label", "text-anchor": "middle" }, monthLabel(point.month, true)),
      );
      if (index === 0 || monthNo === "01") {
        group.append(
          svg("text", { x: cx, y: height - bottom + 32, class: "axis-label axis-year", "text-anchor": "middle" }, point.month.slice(0, 4)),
        );
      }
    }
    root.append(group);
  });
  root.append(svg("line", { x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight, class: "axis" }));
}

/**
 * Grouped percentage bars: rows are {key, label, values: [rate or null, …]}, one bar per
 * series ({name}); rates are 0…1, null draws a dash instead of a bar.
 */
export function rateChart(
  container,
  rows,
  series,
  { ariaLabel, valueText, emptyText, width = 560 },
) {
  if (!rows.length) {
    empty(container, emptyText);
    return;
  }
  const barHeight = 12;
  const rowHeight = series.length * (barHeight + 4) + 14;
  const legendHeight = 26;
  const axisHeight = 18;
  const height = legendHeight + rows.length * rowHeight + axisHeight;
  const root = frame(container, width, height, ariaLabel);
  const labelWidth = Math.min(widest(root, rows.map((row) => row.label), "bar-label") + 4, width / 3);
  const barLeft = labelWidth + 8;
  const barSpan = width - barLeft - 70;

  let legendX = barLeft;
  series.forEach((one, index) => {
    const text = svg("text", { x: legendX + 18, y: 16, class: "legend-label" }, one.name);
    root.append(
      svg(
        "g",
        { class: `legend series-${index}` },
        svg("rect", { x: legendX, y: 6, width: 12, height: 12, rx: 2, class: "bar" }),
        text,
      ),
    );
    // measured once drawn; an estimate while the chart is not laid out (hidden)
    legendX += 30 + (text.getComputedTextLength() || one.name.length * 12);
  });

  const bottomY = legendHeight + rows.length * rowHeight;
  for (const fraction of [0, 0.5, 1]) {
    const x = barLeft + barSpan * fraction;
    root.append(
      svg("line", { x1: x, x2: x, y1: legendHeight, y2: bottomY, class: "grid" }),
      svg("text", { x, y: bottomY + 14, class: "axis-label", "text-anchor": "middle" }, valueText(fraction)),
    );
  }

  rows.forEach((row, rowIndex) => {
    const y0 = legendHeight + rowIndex * rowHeight + 7;
    const group = svg(
      "g",
      { class: "rate-row", "data-key": row.key },
      svg(
        "text",
        { x: labelWidth, y: y0 + (rowHeight - 14) / 2 + 4, class: "bar-label", "text-anchor": "end" },
        row.label,
      ),
    );
    row.values.forEach((rate, index) => {
      const y = y0 + index * (barHeight + 4);
      const length = rate === null || rate === undefined ? 0 : Math.min(rate, 1) * barSpan;
      group.append(
        svg(
          "g",
          { class: `series-${index}`, "data-series": index, "data-value": rate ?? "" },
          title(`${row.label} · ${series[index].name}: ${valueText(rate)}`),
          length
            ? svg("rect", { x: barLeft, y, width: length, height: barHeight, rx: 2, class: "bar" })
            : null,
          svg("text", { x: barLeft + length + 5, y: y + barHeight - 2, class: "bar-value small" }, valueText(rate)),
        ),
      );
    });
    root.append(group);
  });
}
