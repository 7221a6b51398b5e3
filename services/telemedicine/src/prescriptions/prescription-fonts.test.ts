import { describe, expect, it } from 'vitest';
import { loadPrescriptionFonts, REPLACEMENT_CHARACTER, toPrintableText } from './prescription-fonts.ts';

const fonts = loadPrescriptionFonts();

// One sample per script the PDF promises to draw (docs/services/telemedicine.md).
const COVERED_SAMPLES = {
  latinExtended: 'Łódź Šťastný Çağrı Øresund Ærø ß ŉ ǅ ș ț',
  vietnamese: 'Nguyễn Thị Hồng Nhung, Đặng Quốc Bảo',
  greek: 'Ζωή Παπαδοπούλου ἀρχή ῥ',
  cyrillic: 'Ирина Петрова, Ґанна Їжак, Ђорђе Љубичић, Ӯ Ԁ',
  devanagari: 'श्रीमती दुर्गा आराम करें। क्षत्रिय',
};

function missingCodePoints(
  text: string,
  font: { hasGlyphForCodePoint(codePoint: number): boolean },
): string[] {
  return [...text].filter(
    (character) => character !== ' ' && !font.hasGlyphForCodePoint(character.codePointAt(0) ?? 0),
  );
}

describe('loadPrescriptionFonts', () => {
  it('parses the fonts once per process and hands out the same objects afterwards', () => {
    expect(loadPrescriptionFonts()).toBe(fonts);
    expect(loadPrescriptionFonts().regular).toBe(fonts.regular);
  });

  it('draws Latin Extended, Vietnamese, Greek, Cyrillic and Devanagari in the regular and bold faces', () => {
    for (const face of [fonts.regular, fonts.bold]) {
      for (const [script, sample] of Object.entries(COVERED_SAMPLES)) {
        expect({ script, missing: missingCodePoints(sample, face) }).toEqual({ script, missing: [] });
      }
    }
  });

  it('draws every printable ASCII character and U+FFFD in the monospace face of the verification block', () => {
    const ascii = String.fromCharCode(...Array.from({ length: 95 }, (_, index) => 0x20 + index));
    expect(missingCodePoints(ascii + REPLACEMENT_CHARACTER, fonts.mono)).toEqual([]);
  });
});

describe('toPrintableText', () => {
  it('keeps text the font draws unchanged, line breaks and combining marks included', () => {
    const text = `${Object.values(COVERED_SAMPLES).join('\n')}\r\nNguye\u0302\u0303n\rend`;
    expect(toPrintableText(text, fonts.regular)).toBe(text);
  });

  it('turns each tab into four spaces, as the fonts have no glyph for it', () => {
    expect(toPrintableText('Rest:\n\t- fluids\t\tdaily', fonts.regular)).toBe(
      'Rest:\n    - fluids        daily',
    );
  });

  it('replaces each character the font cannot draw with one U+FFFD, a multi-code-point one included', () => {
    expect(toPrintableText('ნინო 王 Zoë محمد', fonts.regular)).toBe('���� � Zoë ����');
    // A skin tone and a zero-width joiner make one character of five code points.
    expect(toPrintableText('Dr 👩🏽‍⚕️ Ada', fonts.regular)).toBe('Dr � Ada');
    // Three user-perceived characters: आ, रा (consonant and vowel sign), म.
    expect(toPrintableText('आराम', fonts.mono)).toBe('���');
  });
});
