import { extractText, getDocumentProxy, getMeta } from 'unpdf';
import { describe, expect, it } from 'vitest';
import { buildPrescriptionItem } from './prescription.factories.ts';
import type { PrintablePrescription } from './prescription.service.ts';
import type { PrescriptionItem } from './prescription.ts';
import { loadPrescriptionFonts } from './prescription-fonts.ts';
import { renderPrescriptionPdf } from './prescription-pdf.ts';

const fonts = loadPrescriptionFonts();

function buildPrintablePrescription(
  overrides: {
    doctorName?: string;
    patientName?: string;
    diagnosis?: string;
    advice?: string;
    items?: PrescriptionItem[];
  } = {},
): PrintablePrescription {
  const id = '0190a1b2-0000-7000-8000-000000000001';
  const issuedAt = new Date('2030-03-01T09:20:00.000Z');
  return {
    patientFullName: overrides.patientName ?? 'Grace Hopper',
    prescription: {
      id,
      consultationId: '0190a1b2-0000-7000-8000-000000000002',
      patientId: '0190a1b2-0000-7000-8000-000000000003',
      doctorId: '0190a1b2-0000-7000-8000-000000000004',
      version: 1,
      supersedesId: null,
      supersededById: null,
      status: 'ISSUED',
      documentDigest: 'ab'.repeat(32),
      signature: 'c2lnbmF0dXJl'.repeat(7),
      signingKeyId: 'kid-2030-01',
      issuedAt,
      supersededAt: null,
      document: {
        id,
        version: 1,
        supersedes_id: null,
        consultation_id: '0190a1b2-0000-7000-8000-000000000002',
        patient_id: '0190a1b2-0000-7000-8000-000000000003',
        issued_at: issuedAt.toISOString(),
        doctor: {
          id: '0190a1b2-0000-7000-8000-000000000004',
          full_name: overrides.doctorName ?? 'Dr Ada Lovelace',
          registration_number: 'REG-1',
        },
        diagnosis: overrides.diagnosis ?? 'Acute pharyngitis',
        advice: overrides.advice ?? 'Rest, fluids.',
        items: overrides.items ?? [buildPrescriptionItem()],
      },
    },
  };
}

// pdf.js reads the text back through each font's ToUnicode map, as a reader's copy and search do.
async function textOf(pdf: Buffer): Promise<string> {
  const { text } = await extractText(await getDocumentProxy(new Uint8Array(pdf)), { mergePages: true });
  return text;
}

/** Font dictionaries as written: BaseFont name and whether the font program is embedded. */
function fontsOf(pdf: Buffer): { baseFonts: string[]; embeddedPrograms: number; standardFonts: number } {
  const raw = pdf.toString('latin1');
  return {
    baseFonts: [...new Set([...raw.matchAll(/\/BaseFont \/([^\s/]+)/g)].map((match) => match[1] ?? ''))],
    embeddedPrograms: [...raw.matchAll(/\/FontFile2 \d+ 0 R/g)].length,
    standardFonts: [...raw.matchAll(/\/Subtype \/Type1/g)].length,
  };
}

describe('renderPrescriptionPdf', () => {
  it('embeds Noto Sans subsets and maps Cyrillic, Greek, Polish, Vietnamese and Devanagari back to the same text', async () => {
    const printable = buildPrintablePrescription({
      doctorName: 'Dr Ирина Петрова',
      patientName: 'Ζωή Nguyễn',
      diagnosis: 'Zapalenie gardła (Łódź)\r\n\tostre',
      advice: 'Nghỉ ngơi, uống nhiều nước. आराम',
      items: [buildPrescriptionItem({ medicine: 'Амоксициллин', instructions: 'μετά το φαγητό' })],
    });
    const pdf = await renderPrescriptionPdf(printable, fonts);

    expect(fontsOf(pdf)).toEqual({
      baseFonts: [
        expect.stringMatching(/^[A-Z]{6}\+NotoSans-Bold$/),
        expect.stringMatching(/^[A-Z]{6}\+NotoSans-Regular$/),
        expect.stringMatching(/^[A-Z]{6}\+NotoSansMono-Regular$/),
      ],
      embeddedPrograms: 3,
      standardFonts: 0,
    });
    const text = await textOf(pdf);
    for (const expected of [
      'Dr Ирина Петрова',
      'Patient: Ζωή Nguyễn',
      'Zapalenie gardła (Łódź)',
      'Амоксициллин',
      'μετά το φαγητό',
      'Nghỉ ngơi, uống nhiều nước. आराम',
      'Prescription id: 0190a1b2-0000-7000-8000-000000000001',
    ]) {
      expect(text).toContain(expected);
    }
    // U+0000 is what a glyph missing from the font (.notdef) reads back as: a tab would be one.
    expect(text).not.toContain('\u0000');
    expect(text).not.toContain('\uFFFD');
    // The metadata is shown in the reader's fonts and keeps the exact name.
    expect((await getMeta(new Uint8Array(pdf))).info).toMatchObject({ Author: 'Dr Ирина Петрова' });
  });

  it('prints one visible U+FFFD for each character no embedded font draws, in text and in the table', async () => {
    const pdf = await renderPrescriptionPdf(
      buildPrintablePrescription({
        patientName: 'ნინო 王小明 Zoë',
        diagnosis: 'Pharyngitis 👩🏽‍⚕️',
        items: [buildPrescriptionItem({ medicine: 'باراسيتامول Paracetamol' })],
      }),
      fonts,
    );

    const text = await textOf(pdf);
    expect(text).toContain('Patient: \uFFFD\uFFFD\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD Zoë');
    expect(text).toContain('Pharyngitis \uFFFD');
    // Eleven Arabic letters; the wide replacements push the Latin word to the cell's next line.
    expect(text).toMatch(/\uFFFD{11}\s+Paracetamol/);
    expect(text).not.toContain('\u0000');
  });

  it('prints the same bytes for the same prescription', async () => {
    const printable = buildPrintablePrescription({
      patientName: 'Ζωή Nguyễn',
      doctorName: 'Dr Ирина Петрова',
    });

    const first = await renderPrescriptionPdf(printable, fonts);
    const second = await renderPrescriptionPdf(printable, fonts);

    expect(second.equals(first)).toBe(true);
  });
});
