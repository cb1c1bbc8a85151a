// Markdown rendered safely: marked to HTML, DOMPurify strips anything that could run or restyle the
// page, and ```mermaid blocks become diagrams. Mermaid (large) is loaded only when a page has one.
import { marked } from './vendor/marked/marked.esm.js';
import DOMPurify from './vendor/dompurify/purify.es.mjs';

let mermaidReady = null;
let diagramSerial = 0;

function loadMermaid() {
  if (!mermaidReady) {
    mermaidReady = import('./vendor/mermaid/mermaid.esm.min.mjs').then(({ default: mermaid }) => {
      // strict: no click handlers or HTML in labels; plain SVG text labels (no foreignObject HTML).
      mermaid.initialize({
        startOnLoad: false, securityLevel: 'strict', theme: 'neutral', htmlLabels: false, flowchart: { htmlLabels: false },
      });
      return mermaid;
    });
  }
  return mermaidReady;
}

export function toSafeHtml(markdown) {
  const html = marked.parse(markdown, { async: false, gfm: true });
  // No style of any kind: the page's CSP allows none inline, and none is needed.
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form'], FORBID_ATTR: ['style'] });
}

// Fills `container` with the rendered markdown; resolves once its diagrams are drawn.
export async function renderMarkdown(container, markdown) {
  container.innerHTML = toSafeHtml(markdown); // sanitized just above
  container.classList.add('markdown');
  for (const anchor of container.querySelectorAll('a[href]')) anchor.rel = 'noopener noreferrer';
  const blocks = [...container.querySelectorAll('pre > code.language-mermaid')];
  if (blocks.length) await drawDiagrams(blocks);
}

async function drawDiagrams(blocks) {
  const mermaid = await loadMermaid();
  for (const code of blocks) {
    const source = code.textContent;
    const pre = code.parentElement;
    try {
      diagramSerial += 1;
      const { svg } = await mermaid.render(`runner-diagram-${diagramSerial}`, source);
      // Shown as an image: an SVG image runs no script and keeps its own styles to itself.
      const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
      const img = document.createElement('img');
      img.className = 'diagram';
      img.alt = 'Diagram';
      img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
      img.src = url;
      const viewBox = /viewBox="[\d.-]+ [\d.-]+ ([\d.]+) ([\d.]+)"/.exec(svg);
      if (viewBox) img.width = Math.round(Number(viewBox[1]));
      const figure = document.createElement('figure');
      figure.className = 'mermaid';
      const toggle = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = 'Mermaid source';
      toggle.append(summary, pre.cloneNode(true));
      figure.append(img, toggle);
      pre.replaceWith(figure);
    } catch (error) {
      const note = document.createElement('p');
      note.className = 'error';
      note.textContent = `This diagram could not be drawn: ${error && error.message ? error.message : error}`;
      pre.before(note);
    }
  }
}
