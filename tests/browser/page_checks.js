// Checks the accessibility tests run in the page (tests/browser/test_accessibility.py).
// For every element with text of its own: its colour, the first opaque background
// behind it (colours blended through translucent layers and opacity), and its size.
// WCAG 2.1 AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
window.__contrastProblems = () => {
  const parse = (text) => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return { r, g, b, a: a === undefined ? 1 : a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  // Behind everything: the browser's canvas, white or (in a dark colour scheme) dark.
  const probe = document.createElement("div");
  probe.style.backgroundColor = "Canvas";
  document.documentElement.append(probe);
  const canvas = parse(getComputedStyle(probe).backgroundColor);
  probe.remove();
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let colour = canvas;
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const opacity = (el) => {
    let o = 1;
    for (let node = el; node; node = node.parentElement) o *= Number(getComputedStyle(node).opacity);
    return o;
  };
  const luminance = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg, script, style, noscript, template, [hidden], .skip")) continue;
    // WCAG exempts inactive controls (a disabled button).
    if (el.closest(":disabled")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || style.visibility === "hidden") continue;
    const back = background(el);
    const text = parse(style.color);
    const fore = over({ ...text, a: text.a * opacity(el) }, back);
    const [hi, lo] = [luminance(fore), luminance(back)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const what = `${el.tagName.toLowerCase()}.${el.className}`;
      problems.push(`${what} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
  }
  return problems;
};

// Form controls and links a screen reader could not name.
window.__unnamedControls = () => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a[href]")]
  .filter((el) => !el.closest("[hidden], [aria-hidden=true], template"))
  .filter((el) => {
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby") || el.getAttribute("title")
      || (["BUTTON", "A"].includes(el.tagName) && el.textContent.trim());
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 80));
