import PDFDocument from 'pdfkit';
import type { PrintablePrescription } from './prescription.service.ts';
import { type PrescriptionFonts, toPrintableText } from './prescription-fonts.ts';

const MARGIN = 50;
// The name each face is registered under in a document.
const FONT = {
  regular: 'NotoSans',
  bold: 'NotoSans-Bold',
  mono: 'NotoSansMono',
} as const satisfies Record<keyof PrescriptionFonts, string>;

/**
 * The printable prescription: doctor and registration number, patient, date,
 * diagnosis, the items as a table, advice, and a verification block (id, key
 * id, signature) a pharmacy types into `POST /telemedicine/prescriptions/verify`
 * or checks offline against the published key. Text is set in the embedded
 * `fonts` (see prescription-fonts.ts); what they cannot draw prints as U+FFFD.
 */
export async function renderPrescriptionPdf(
  printable: PrintablePrescription,
  fonts: PrescriptionFonts,
): Promise<Buffer> {
  const { prescription, patientFullName } = printable;
  const { document } = prescription;
  const pdf = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    // The document's own dates, not the wall clock: the same prescription prints the same.
    info: {
      Title: `Prescription ${document.id}`,
      // Metadata is shown in the reader's own fonts, so it keeps the exact name.
      Author: document.doctor.full_name,
      CreationDate: prescription.issuedAt,
      ModDate: prescription.issuedAt,
    },
  });
  // pdfkit 0.20 takes a parsed fontkit font (it checks for `layout`) though its
  // types list only paths and bytes; the family, equal to the name, lets pdfkit
  // find the font again when a table cell restores it.
  for (const face of ['regular', 'bold', 'mono'] as const) {
    pdf.registerFont(FONT[face], fonts[face] as unknown as PDFKit.Mixins.PDFFontSource, FONT[face]);
  }
  const printableIn = (face: keyof PrescriptionFonts, text: string) => toPrintableText(text, fonts[face]);
  const chunks: Buffer[] = [];
  const finished = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });

  pdf.font(FONT.bold).fontSize(18).text('Prescription');
  if (prescription.version > 1) {
    pdf
      .font(FONT.regular)
      .fontSize(9)
      .text(`Version ${document.version}, correcting ${document.supersedes_id}`);
  }
  if (prescription.status === 'SUPERSEDED') {
    pdf
      .font(FONT.bold)
      .fontSize(10)
      .fillColor('red')
      .text('SUPERSEDED by a corrected version')
      .fillColor('black');
  }
  pdf.moveDown();

  pdf.font(FONT.bold).fontSize(11).text(printableIn('bold', document.doctor.full_name));
  pdf
    .font(FONT.regular)
    .fontSize(10)
    .text(printableIn('regular', `Registration number: ${document.doctor.registration_number}`));
  pdf.moveDown(0.5);
  pdf.text(printableIn('regular', `Patient: ${patientFullName}`));
  pdf.text(`Date: ${document.issued_at.slice(0, 10)}`);
  pdf.moveDown();

  pdf.font(FONT.bold).fontSize(11).text('Diagnosis');
  pdf.font(FONT.regular).fontSize(10).text(printableIn('regular', document.diagnosis));
  pdf.moveDown();

  pdf.font(FONT.bold).fontSize(11).text('Medicines');
  pdf.moveDown(0.3);
  pdf
    .font(FONT.regular)
    .fontSize(9)
    .table({
      columnStyles: ['*', 60, 70, 80, 55, '*'],
      data: [
        ['Medicine', 'Strength', 'Dosage', 'Frequency', 'Duration', 'Instructions'].map((text) => ({
          text,
          type: 'TH' as const,
          font: { src: FONT.bold },
        })),
        ...document.items.map((item) =>
          [item.medicine, item.strength, item.dosage, item.frequency, item.duration, item.instructions].map(
            (text) => printableIn('regular', text),
          ),
        ),
      ],
    });
  pdf.font(FONT.regular).moveDown();

  if (document.advice !== '') {
    pdf.font(FONT.bold).fontSize(11).text('Advice', MARGIN);
    pdf.font(FONT.regular).fontSize(10).text(printableIn('regular', document.advice));
    pdf.moveDown();
  }

  pdf.font(FONT.bold).fontSize(10).text('Verification', MARGIN);
  pdf
    .font(FONT.mono)
    .fontSize(8)
    .text(`Prescription id: ${document.id}`)
    .text(`Key id (kid): ${prescription.signingKeyId}`)
    .text(`Signature (Ed25519): ${prescription.signature}`)
    .text(`SHA-256 of the signed document: ${prescription.documentDigest}`);
  pdf
    .font(FONT.regular)
    .fontSize(8)
    .text(
      'Verify with POST /telemedicine/prescriptions/verify {prescription_id, signature}; the public key is ' +
        'published at GET /telemedicine/prescriptions/signing-keys.',
    );

  pdf.end();
  return finished;
}
