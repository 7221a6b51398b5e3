import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { create, type Font } from 'fontkit';

// The printed prescription embeds Noto Sans (SIL Open Font License 1.1), from
// the npm packages @expo-google-fonts/noto-sans and -mono. This build of Noto
// Sans draws Latin (with Extended-A/B and Vietnamese), Greek (with polytonic),
// Cyrillic (with the supplement) and Devanagari, which fontkit shapes. Arabic
// and Hebrew are left out on purpose: pdfkit has no bidirectional layout, so a
// name of several words would print in the wrong word order. CJK fonts weigh
// 10-20 MB per weight and region. Whatever the fonts cannot draw prints as
// U+FFFD, visibly, never as a wrong or invisible glyph.

/** The faces of the printed prescription, parsed once per process and shared by every render. */
export type PrescriptionFonts = { regular: Font; bold: Font; mono: Font };

const FONT_FILES = {
  regular: '@expo-google-fonts/noto-sans/400Regular/NotoSans_400Regular.ttf',
  bold: '@expo-google-fonts/noto-sans/700Bold/NotoSans_700Bold.ttf',
  mono: '@expo-google-fonts/noto-sans-mono/400Regular/NotoSansMono_400Regular.ttf',
} as const;

export const REPLACEMENT_CHARACTER = '\uFFFD';
// pdfkit breaks lines at these itself and draws no glyph for them.
const LINE_BREAK_CODE_POINTS: ReadonlySet<number> = new Set([0x0a, 0x0d]);
// pdfkit has no tab stops and would draw the font's .notdef box for a tab;
// clinicians use tabs to indent, which spaces keep.
const TAB_AS_SPACES = '    ';
// Laid out once at load so fontkit parses the shaping tables (GSUB, GPOS) then,
// not in the first request; the scripts are those the fonts are chosen for.
const WARM_UP_TEXT = 'Rx 0-9 Łódź Nguyễn Ζωή Ирина आराम';

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });
let loaded: PrescriptionFonts | undefined;

/**
 * Reads and parses the fonts on the first call and returns the same objects
 * afterwards. Parsing per document would cost ~130 ms a PDF (the shaping
 * tables again); a shared fontkit font keeps its parsed tables and glyphs,
 * and pdfkit still subsets it per document. Sharing is safe only because a
 * render uses the fonts synchronously, from the first text to `end()`
 * (fontkit reads through one stream position per font): no await in between.
 */
export function loadPrescriptionFonts(): PrescriptionFonts {
  loaded ??= {
    regular: openFont(FONT_FILES.regular),
    bold: openFont(FONT_FILES.bold),
    mono: openFont(FONT_FILES.mono),
  };
  return loaded;
}

function openFont(specifier: string): Font {
  const path = createRequire(import.meta.url).resolve(specifier);
  const font = create(readFileSync(path));
  if ('fonts' in font) throw new Error(`${specifier} is a font collection, not one font`);
  // The replacement is drawn in the very font that lacks the original character.
  if (!font.hasGlyphForCodePoint(REPLACEMENT_CHARACTER.codePointAt(0) ?? 0))
    throw new Error(`${specifier} has no glyph for U+FFFD`);
  font.layout(WARM_UP_TEXT);
  return font;
}

/**
 * The text as `font` can draw it: each user-perceived character (grapheme)
 * that needs a code point the font lacks becomes one U+FFFD, and a tab four
 * spaces. Without this, pdfkit would draw the font's .notdef box and map it
 * to U+0000.
 */
export function toPrintableText(text: string, font: Pick<Font, 'hasGlyphForCodePoint'>): string {
  let printable = '';
  for (const { segment } of graphemes.segment(text)) {
    if (segment === '\t') printable += TAB_AS_SPACES;
    else printable += canDraw(segment, font) ? segment : REPLACEMENT_CHARACTER;
  }
  return printable;
}

function canDraw(grapheme: string, font: Pick<Font, 'hasGlyphForCodePoint'>): boolean {
  for (const character of grapheme) {
    const codePoint = character.codePointAt(0) ?? 0;
    if (!LINE_BREAK_CODE_POINTS.has(codePoint) && !font.hasGlyphForCodePoint(codePoint)) return false;
  }
  return true;
}
